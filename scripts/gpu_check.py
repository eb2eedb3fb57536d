"""One command that proves the generated project on a GPU machine and prints one table (``make gpu-check``).

    make gpu-bundle      here, with the package index: projects baked, wheels the GPU machine lacks, into .gpu-bundle/
    make gpu-check       there, with .gpu-bundle/ beside this script: its own python3 and torch, no network, no venv

It installs the bundle's wheels with ``--no-index`` into .gpu-bundle/site and, in the baked digits project,
checks: fit, test and predict in 32-true, 16-mixed and bf16-mixed (finite losses, test accuracy above chance);
ddp and fsdp on one GPU and on every GPU when there are several; deepspeed (trains when installed, else one
ERROR line); free-GPU selection with a device count (the chosen GPU in manifest.json); sh/run.py's GPU queue
over two versions; a fit killed on the GPU and resumed; the benchmark with short settings; the project's own
tests. Without a GPU it stops at once with one line. Standard library only (it runs before the bundle is
installed); each check is a subprocess with a time limit, and the table is also written as JSON.
"""
import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BUNDLE = Path(__file__).resolve().parents[1] / ".gpu-bundle"
PROJECT = "gpu_digits"  # baked by scripts/gpu_bundle.py: digits, cnn, csv logger
QUICK = ["--trainer.max_epochs=3", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
CHANCE = 0.1  # ten digits


def gpu_count(nvidia_smi: str = "nvidia-smi") -> int:
    """How many GPUs nvidia-smi lists; 0 without nvidia-smi or when it fails."""
    try:
        listed = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listed.splitlines() if line.startswith("GPU "))


def fit_verdict(run_dir: Path) -> tuple[bool, str]:
    """(passed, detail) of a trained run folder: finished, finite losses, test accuracy above chance."""
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError) as error:
        return False, f"no metrics.json ({error})"
    fit, test = metrics.get("fit") or {}, metrics.get("test") or {}
    losses = [value for key, value in {**fit.get("train", {}), **fit.get("val", {}), **test}.items() if "loss" in key]
    accuracy = test.get("test/acc")
    if fit.get("status") != "finished":
        return False, f"fit {fit.get('status')}"
    if not losses or not all(math.isfinite(value) for value in losses):
        return False, f"losses {losses}"
    if accuracy is None or accuracy <= CHANCE:
        return False, f"test accuracy {accuracy} (chance {CHANCE})"
    return True, f"test acc {accuracy:.3f}, {fit.get('epochs')} epochs"


def table(rows: list) -> str:
    """check | result | seconds | detail, aligned."""
    lines = [("check", "result", "s", "detail"), *((r["check"], r["result"], f"{r['seconds']:.0f}", r["detail"])
                                                     for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d}" for a, b, c, d in lines)


class Checks:
    """The checks, each a method returning (passed, detail), run in the baked project with the bundle's packages."""

    def __init__(self, project: Path, env: dict, gpus: int):
        self.project, self.env, self.gpus, self.rows = project, env, gpus, []

    def main_py(self, *args, timeout=240, extra_env=None) -> subprocess.CompletedProcess:
        command = [sys.executable, "main.py", *args]
        return subprocess.run(command, cwd=self.project, env={**self.env, **(extra_env or {})}, capture_output=True,
                              text=True, timeout=timeout)

    def fit(self, version: str, *args) -> tuple[bool, str]:
        done = self.main_py("fit", "-c", "config/example.yaml", f"--run.version={version}", *QUICK, *args)
        if done.returncode != 0:
            return False, (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1][:200]
        return fit_verdict(self.project / "res" / "example" / version)

    def precision(self, precision: str) -> tuple[bool, str]:
        version = f"gpu_{precision}"
        passed, detail = self.fit(version, f"--trainer.precision={precision}")
        if not passed:
            return passed, detail
        for subcommand in ("test", "predict"):
            done = self.main_py(subcommand, "-c", "config/example.yaml", f"--run.version={version}",
                                f"--trainer.precision={precision}", "--ckpt_path", "best")
            if done.returncode != 0:
                return False, f"{subcommand}: {(done.stderr.strip().splitlines() or [''])[-1][:200]}"
        rows = (self.project / "res" / "example" / version / "predictions.csv").read_text().count("\n") - 1
        return True, f"{detail}; test and predict ({rows} rows)"

    def strategy(self, strategy: str, devices: int) -> tuple[bool, str]:
        return self.fit(f"gpu_{strategy}_{devices}", f"--trainer.strategy={strategy}", f"--trainer.devices={devices}")

    def deepspeed(self) -> tuple[bool, str]:
        installed = subprocess.run([sys.executable, "-c", "import deepspeed"], env=self.env, capture_output=True)
        done = self.main_py("fit", "-c", "config/example.yaml", "--run.version=gpu_deepspeed", *QUICK,
                            "--trainer.strategy=deepspeed")
        if installed.returncode == 0:
            return done.returncode == 0, "installed: " + ("trained" if done.returncode == 0 else done.stderr[-200:])
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
        return done.returncode != 0 and len(errors) == 1, f"not installed: {errors[0][:160] if errors else 'no line'}"

    def free_gpu_selection(self) -> tuple[bool, str]:
        passed, detail = self.fit("gpu_select", "--trainer.devices=1")
        manifest = json.loads((self.project / "res" / "example" / "gpu_select" / "manifest.json").read_text())
        chosen = manifest["config"]["trainer"]["devices"]  # the ids preflight.py picked from nvidia-smi
        picked = isinstance(chosen, list) and len(chosen) == 1
        return passed and picked, f"{detail}; trained on GPU {chosen} (recorded in manifest.json)"

    def queue(self) -> tuple[bool, str]:
        subprocess.run([sys.executable, "sh/structure.py", "-e", "gpu_queue", "-v", "2"], cwd=self.project,
                       env=self.env, capture_output=True, check=True)
        done = subprocess.run([sys.executable, "sh/run.py", "-e", "gpu_queue", "--all_ver", "--gpus", "0",
                               "--gpus-per-run", "1", "-o", " ".join(QUICK)], cwd=self.project, env=self.env,
                              capture_output=True, text=True, timeout=300)
        verdicts = [fit_verdict(self.project / "res" / "gpu_queue" / f"version_{k}") for k in (0, 1)]
        return done.returncode == 0 and all(ok for ok, _ in verdicts), "; ".join(detail for _, detail in verdicts)

    def resume_after_kill(self) -> tuple[bool, str]:
        args = ["fit", "-c", "config/example.yaml", "--run.version=gpu_resume", "--trainer.max_epochs=30",
                "--trainer.enable_progress_bar=false"]
        process = subprocess.Popen([sys.executable, "main.py", *args], cwd=self.project, env=self.env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        last = self.project / "res" / "example" / "gpu_resume" / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 120
        while not last.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait()
        done = self.main_py(*args[:3], "--run.version=gpu_resume", "--trainer.max_epochs=4",
                            "--trainer.enable_progress_bar=false", "--ckpt_path", "last")
        passed, detail = fit_verdict(self.project / "res" / "example" / "gpu_resume")
        return done.returncode == 0 and passed, f"killed after its first last.ckpt, resumed: {detail}"

    def benchmark(self) -> tuple[bool, str]:
        bench = Path(__file__).resolve().parents[1] / "bench" / "bench.py"
        done = subprocess.run([sys.executable, str(bench), "--projects", str(BUNDLE / "projects"), "--repeats", "1",
                               "--epochs", "2", "--backbone", "resnet", "--sweep-versions", "4",
                               "--work", str(BUNDLE / "bench")],
                              env=self.env, capture_output=True, text=True, timeout=400)
        ratios = [line.strip() for line in done.stdout.splitlines() if "(1)/(2) =" in line or " / (1):" in line
                  or "outside the fits" in line]
        return done.returncode == 0, " | ".join(ratios)[:600] or done.stderr[-300:]

    def project_tests(self) -> tuple[bool, str]:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-n", "8"],
                              cwd=self.project, env=self.env, capture_output=True, text=True, timeout=600)
        return done.returncode == 0, (done.stdout.strip().splitlines() or [""])[-1][:200]

    def plan(self) -> list:
        precisions = ("32-true", "16-mixed", "bf16-mixed")
        checks = [(f"fit/test/predict {p}", lambda p=p: self.precision(p)) for p in precisions]
        for devices in sorted({1, self.gpus}):
            checks += [(f"{name}, devices {devices}", lambda name=name, d=devices: self.strategy(name, d))
                       for name in ("ddp", "fsdp")]
        return checks + [("deepspeed", self.deepspeed), ("free-GPU selection (devices: 1)", self.free_gpu_selection),
                         ("run.py --gpus 0 --gpus-per-run 1, 2 versions", self.queue),
                         ("resume after a kill", self.resume_after_kill), ("benchmark, short", self.benchmark),
                         ("the project's own tests", self.project_tests)]

    def run(self) -> list:
        for name, check in self.plan():
            start = time.monotonic()
            try:
                passed, detail = check()
            except Exception as error:  # noqa: BLE001 - one check's failure is a row, not the end of the table
                passed, detail = False, f"{type(error).__name__}: {error}"[:300]
            self.rows.append({"check": name, "result": "ok" if passed else "FAILED", "detail": detail,
                              "seconds": time.monotonic() - start})
            print(f"{self.rows[-1]['result']:6s} {name} ({self.rows[-1]['seconds']:.0f} s): {detail}", flush=True)
        return self.rows


def install_bundle() -> dict:
    """The environment with the bundle's wheels installed (no index) into .gpu-bundle/site."""
    site = BUNDLE / "site"
    wheels = sorted(str(path) for path in (BUNDLE / "wheels").glob("*.whl"))
    if wheels and not site.is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--target", str(site), *wheels], check=True)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or str(BUNDLE), help="where gpu_check.json goes")
    args = parser.parse_args(argv)
    gpus = gpu_count()
    if gpus == 0:
        print("gpu-check: no NVIDIA GPU here (nvidia-smi lists none); run it on a GPU machine", file=sys.stderr)
        return 1
    source = BUNDLE / "projects" / PROJECT
    if not source.is_dir():
        print(f"gpu-check: {source} is missing; run `make gpu-bundle` where the package index is, and copy "
              f"{BUNDLE.name}/ along", file=sys.stderr)
        return 1
    env = install_bundle()
    work = BUNDLE / "run"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work / PROJECT)
    rows = Checks(work / PROJECT, env, gpus).run()
    print("\n" + table(rows))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "gpu_check.json").write_text(json.dumps({"gpus": gpus, "rows": rows}, indent=2))
    return 0 if all(row["result"] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
