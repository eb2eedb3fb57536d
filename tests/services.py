"""Real servers for the tests of a team's services, each on 127.0.0.1 at a free port and in a folder of its own:
PostgreSQL from the Debian package (a fresh cluster with trust authentication; run as the ``postgres`` user when
the tests run as root, as initdb refuses root), an MLflow tracking server and an S3 endpoint (moto's server, over
TLS with a certificate of a test CA, as litdata's S3 client takes https only). Each is stopped and started again
at will, as a server that goes away mid-study is."""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not start within {timeout:.0f} s")
        time.sleep(0.2)


def answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def postgres_program(name: str):
    """``initdb``/``pg_ctl``: on PATH, else where Debian's postgresql package puts them; None when not installed."""
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


class Postgres:
    """A PostgreSQL cluster of its own: ``url`` names its ``postgres`` database as user ``postgres``."""

    def __init__(self):
        self.initdb, self.pg_ctl = postgres_program("initdb"), postgres_program("pg_ctl")
        self.why_not = None if self.initdb and self.pg_ctl else ("no PostgreSQL server: Debian's postgresql package "
                                                                 "is not installed (scripts/install_test_tools.sh, run "
                                                                 "by make test, installs it where apt-get may)")
        self.as_user = []
        if not self.why_not and os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
                self.as_user = ["runuser", "-u", "postgres", "--"]
            except KeyError:
                self.why_not = "running as root without a postgres user: initdb refuses root"
        self.folder = Path(tempfile.mkdtemp(prefix="test-postgres-"))  # outside pytest's root-only tmp folders
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command, timeout=120):
        return subprocess.run([*self.as_user, *command], capture_output=True, text=True, timeout=timeout)

    def create(self) -> None:
        if self.as_user:
            shutil.chown(self.folder, "postgres")
        made = self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        if made.returncode != 0:
            raise RuntimeError("initdb failed: " + made.stderr[-2000:])
        self.start()

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        started = self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options,
                            "-w", "start")
        if started.returncode != 0:
            raise RuntimeError("pg_ctl start failed: " + started.stderr[-2000:] + self.log()[-2000:])
        wait_until(lambda: answers(self.port), 60, "PostgreSQL")

    def stop(self, mode: str = "fast") -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class ServerProcess:
    """A server program run in its own session, its output in ``folder``/server.log; ``stop`` ends it."""

    def __init__(self, folder: Path, scheme: str):
        self.folder, self.port = folder, free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.process = None

    def launch(self, command: list) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = open(self.folder / "server.log", "ab")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            self.process.wait(60)
        self.log.close()


class MlflowServer(ServerProcess):
    """``mlflow server`` on 127.0.0.1: a SQLite backend and an artifact folder in ``folder``; ``url`` to reach it."""

    def __init__(self, folder: Path):
        super().__init__(folder, "http")

    def start(self) -> None:
        mlflow = Path(sys.executable).with_name("mlflow")
        command = [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                   "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
                   "--artifacts-destination", str(self.folder / "artifacts")]
        self.launch(command)

        def healthy():
            if self.process.poll() is not None:
                raise RuntimeError("mlflow server exited: " + (self.folder / "server.log").read_text()[-2000:])
            try:
                return urllib.request.urlopen(self.url + "/health", timeout=2).status == 200
            except OSError:
                return False

        wait_until(healthy, 120, "mlflow server")


def test_ca(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for 127.0.0.1, made in ``folder``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
              .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now).not_valid_after(now + datetime.timedelta(1))
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class S3Server(ServerProcess):
    """moto's S3 server on https://127.0.0.1; ``env`` points boto3 and litdata's clients at it."""

    def __init__(self, folder: Path):
        super().__init__(folder, "https")

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        ca, certificate, key = test_ca(self.folder)
        self.env = {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_CA_BUNDLE": str(ca), "SSL_CERT_FILE": str(ca)}
        moto = Path(sys.executable).with_name("moto_server")
        self.launch([str(moto), "-H", "127.0.0.1", "-p", str(self.port), "-c", str(certificate), "-k", str(key)])
        wait_until(lambda: answers(self.port), 60, "moto S3 server")

    def upload(self, folder: Path, bucket: str, prefix: str) -> None:
        """``aws s3 sync folder s3://bucket/prefix``, with boto3 (the bucket made first)."""
        import boto3

        client = boto3.client("s3", endpoint_url=self.url, verify=self.env["AWS_CA_BUNDLE"], region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        client.create_bucket(Bucket=bucket)
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder)}")
