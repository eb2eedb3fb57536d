"""Real servers for the tests of a team's services, each on 127.0.0.1 at a free port and in a folder of its own:
PostgreSQL from the Debian package (a fresh cluster with trust authentication; run as the ``postgres`` user when
the tests run as root, as initdb refuses root) and an MLflow tracking server. Each is stopped and started again
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


class MlflowServer:
    """``mlflow server`` on 127.0.0.1: a SQLite backend and an artifact folder in ``folder``; ``url`` to reach it."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> None:
        mlflow = Path(sys.executable).with_name("mlflow")
        command = [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                   "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
                   "--artifacts-destination", str(self.folder / "artifacts")]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = open(self.folder / "server.log", "ab")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

        def healthy():
            if self.process.poll() is not None:
                raise RuntimeError("mlflow server exited: " + (self.folder / "server.log").read_text()[-2000:])
            try:
                return urllib.request.urlopen(self.url + "/health", timeout=2).status == 200
            except OSError:
                return False

        wait_until(healthy, 120, "mlflow server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            self.process.wait(60)
        self.log.close()
