"""Run experiment versions: ``main.py fit -c config/<exp>/share.yaml -c config/<exp>/version_k/version.yaml``.

    python sh/run.py -e baseline -v 0
    python sh/run.py -e baseline -v 1 -o "--trainer.max_epochs=3"
    python sh/run.py -e baseline -v 0 --dry-run

Works from any folder: paths resolve against the project root.
"""
import argparse
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _project import PROJECT_ROOT, UsageError, check_experiment_name, exit_on_usage_error, project_path  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-e", "--ex_name", required=True, help="experiment to run")
    parser.add_argument("-v", "--v_num", type=int, required=True, help="version number k of version_k")
    parser.add_argument("-c", "--config", default="config", help="config folder (default: ./config)")
    parser.add_argument("-o", "--other_para", default="", help='extra arguments for main.py, e.g. "--trainer.max_epochs=3"')
    parser.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    return parser.parse_args(argv)


def fit_command(experiment_dir: Path, version: int, other: str = "") -> list[str]:
    """The main.py command line that trains one version."""
    share = experiment_dir / "share.yaml"
    version_yaml = experiment_dir / f"version_{version}" / "version.yaml"
    for path in (share, version_yaml):
        if not path.is_file():
            raise UsageError(f"{path} does not exist (create it with sh/structure.py)")
    return [sys.executable, str(PROJECT_ROOT / "main.py"), "fit", "-c", str(share), "-c", str(version_yaml),
            *shlex.split(other)]


def main(argv=None):
    args = parse_args(argv)
    experiment_dir = project_path(args.config) / check_experiment_name(args.ex_name)
    command = fit_command(experiment_dir, args.v_num, args.other_para)
    print(shlex.join(command), flush=True)
    if args.dry_run:
        return 0
    return subprocess.run(command, cwd=PROJECT_ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
