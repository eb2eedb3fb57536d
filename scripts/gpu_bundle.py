"""Prepare what ``make gpu-check`` needs on a GPU machine that has no network (``make gpu-bundle``, run here).

Into .gpu-bundle/ (git-ignored; carried with the project): the projects the check trains, baked here with
cookiecutter (the GPU machine has none), and the wheels of the generated project's requirements that the
machine's own Python 3.12 lacks, downloaded for that Python at the versions installed in this venv.
"""
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
BUNDLE = TEMPLATE / ".gpu-bundle"
MISSING_THERE = ("jsonargparse", "docstring-parser", "typeshed-client", "python-dotenv", "shtab")  # KINDS.md's list
PROJECTS = {"gpu_digits": {"dataset": "digits", "model": "cnn", "logger": "csv"},
            "bench_digits": {"dataset": "digits", "model": "resnet"},
            "bench_mnist": {"dataset": "mnist", "model": "resnet"}}
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def main() -> int:
    shutil.rmtree(BUNDLE, ignore_errors=True)
    (BUNDLE / "projects").mkdir(parents=True)
    for name, answers in PROJECTS.items():
        subprocess.run([sys.executable, "-m", "cookiecutter", str(TEMPLATE), "--no-input", "-o",
                        str(BUNDLE / "projects"), f"project_name={name}",
                        *(f"{key}={value}" for key, value in answers.items())], check=True)
        print(f"baked {name}", flush=True)
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in MISSING_THERE]
    platforms = [argument for platform in PLATFORMS for argument in ("--platform", platform)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--python-version", "3.12",
                    "--implementation", "py", *platforms, "--only-binary=:all:", "-d", str(BUNDLE / "wheels"), *pins],
                   check=True)
    wheels = sorted(path.name for path in (BUNDLE / "wheels").glob("*.whl"))
    size = sum(path.stat().st_size for path in BUNDLE.rglob("*") if path.is_file())
    print(f"{BUNDLE.name}/: {len(PROJECTS)} projects, wheels {', '.join(wheels)}; {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
