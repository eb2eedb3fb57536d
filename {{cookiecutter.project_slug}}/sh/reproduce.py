#!/usr/bin/env python
"""Train a finished version again from its own records, and compare the new metrics with the recorded ones.

    python sh/reproduce.py -e baseline -v 0                    # exit 1 when a metric differs
    python sh/reproduce.py -e baseline -v 0 --tolerance 1e-4   # differences up to 1e-4 count as equal

Only the version's records are used: its config.yaml (the merged config, seed included) and the code state in
its manifest.json: the git commit it trained on, with code.diff (the changes that were not committed)
applied (runtime/code_state.py). That code is checked out as a git worktree in a temporary folder and
trains there, on this project's data (DATA_DIR, else data/datasets; relative paths to files outside git
are read from the project), into res/<exp>/<version>/reproduce/run_<n>/; the version's own results are
not touched. The recorded and the new metrics (best score, epochs and steps, last validation and training
metrics, test metrics) are printed side by side with their differences and written to reproduction.json
in that folder.

--tolerance is the largest absolute difference that counts as equal (default 0: exact, which a CPU run
gives; CUDA kernels are exact only with trainer.deterministic: true). Refused in one line: a version with
no manifest, still running or not finished, trained outside git, a commit no longer in the repository, a
code.diff that does not apply.
"""
import argparse
import hashlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import yaml

from _experiments import (
    ArgumentParser,
    UsageError,
    Version,
    exit_on_usage_error,
    find_experiment,
    listing,
    shown,
    version_numbers,
)
from runtime.code_state import CodeStateError, checked_out, git
from runtime.run_folder import (
    LOCK_FD_ENV,
    PROJECT_ROOT,
    RunPaths,
    number,
    project_path,
    read_json,
    run_status,
    write_json_atomic,
)

# The software whose versions are compared with the recorded ones: (manifest's name, distribution).
SOFTWARE = (("torch", "torch"), ("pytorch_lightning", "pytorch-lightning"), ("torchmetrics", "torchmetrics"))


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-e", "--ex_name", required=True, help="experiment")
    parser.add_argument("-v", "--v_num", type=int, required=True, help="version number k of version_k")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="largest absolute difference of a metric that counts as equal (default 0: exact)")
    parser.add_path_argument("-c", "--config", default="config", help="config folder")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- the version's records

def records(version: Version) -> tuple[dict, dict, dict, Path]:
    """(manifest, config, metrics, code.diff or None) of a finished version; UsageError saying what is missing."""
    paths, label = version.paths, version.label
    status = run_status(paths)
    if status == "running":
        raise UsageError(f"{label} is still running (a process holds {shown(paths.lock_file)}): reproduce it once "
                         "it has finished")
    manifest = read_json(paths.manifest_file)
    if manifest is None:
        raise UsageError(f"{label} has no manifest.json ({shown(paths.manifest_file)}): train it first "
                         f"(python sh/run.py -e {version.experiment_dir.name} -v {version.number})")
    if status != "finished":
        raise UsageError(f"{label} did not finish (status {status}): only a finished run has metrics to reproduce")
    try:
        config = yaml.safe_load(paths.config_file.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"{shown(paths.config_file)} cannot be read ({type(error).__name__}): "
                         "the merged config of the run is needed") from None
    code = manifest.get("git") or {}
    if not code.get("commit"):
        why = code.get("note") or "manifest.json records no commit"
        raise UsageError(f"{label} has no recorded code state ({why}); commit the project to git and train it again")
    if code.get("diff") is None and code.get("diff_bytes"):
        raise UsageError(f"{label}'s uncommitted changes were not saved: {code.get('note')}")
    diff = None
    if code.get("diff"):
        diff = paths.run_dir / code["diff"]
        if not diff.is_file():
            raise UsageError(f"{shown(diff)} is missing: it held the changes {label} trained with, uncommitted")
        if hashlib.sha256(diff.read_bytes()).hexdigest() != code.get("diff_sha256"):
            raise UsageError(f"{shown(diff)} is not the diff {label} saved (its sha256 differs from manifest.json's)")
    return manifest, config, read_json(paths.metrics_file, default={}), diff


def notes(manifest: dict, config: dict) -> list:
    """What may make the new numbers differ for reasons other than the code: software, devices, resumes, seed."""
    found = []
    recorded = manifest.get("software") or {}
    here = {"python": platform.python_version()}
    for name, distribution in SOFTWARE:
        try:
            here[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            here[name] = None
    for name, version in here.items():
        if recorded.get(name) and recorded[name] != version:
            found.append(f"{name} {recorded[name]} recorded, {version} here: results may differ")
    if manifest.get("accelerator") == "cuda" and not (config.get("trainer") or {}).get("deterministic"):
        found.append("trained on CUDA without trainer.deterministic: true, whose kernels may differ from run to run "
                     "(allow for it with --tolerance)")
    if manifest.get("earlier_attempts"):
        found.append(f"the recorded run was resumed ({len(manifest['earlier_attempts'])} earlier attempt(s)); "
                     "this one trains from the start")
    if config.get("seed_everything") is False:
        found.append("seed_everything: false: the run was not seeded, so its numbers are not expected to repeat")
    return found


def compared_metrics(metrics: dict) -> dict:
    """The numbers of a metrics.json that a reproduction must repeat, by name."""
    fit = metrics.get("fit") or {}
    values = {f"best {fit.get('monitor')}": fit.get("best_score"), "epochs": fit.get("epochs"),
              "global_step": fit.get("global_step")}
    values.update({f"last {key}": value for section in ("val", "train")
                   for key, value in (fit.get(section) or {}).items()})
    values.update(metrics.get("test") or {})
    return values


# ----------------------------------------------------------------------------- the new run

def claim_folder(reproductions: Path) -> Path:
    """The next free ``run_<n>`` under ``reproductions``, made at once (two reproductions never share one)."""
    reproductions.mkdir(parents=True, exist_ok=True)
    n = 1 + max((int(p.name[4:]) for p in reproductions.glob("run_*") if p.name[4:].isdigit()), default=0)
    while True:
        try:
            (reproductions / f"run_{n}").mkdir()
            return reproductions / f"run_{n}"
        except FileExistsError:
            n += 1


def rebased(value, project: Path, original_run: Path):
    """A config value for the checked-out ``project``: a relative path that exists only in this project (data,
    checkpoints: files outside git) made absolute; a path into the original run's folder dropped (None), so the
    reproduction never writes there (main.py routes every output into the new folder)."""
    if isinstance(value, dict):
        return {key: rebased(item, project, original_run) for key, item in value.items()}
    if isinstance(value, list):
        return [rebased(item, project, original_run) for item in value]
    if not isinstance(value, str) or not value or "\n" in value:
        return value
    path = Path(value).expanduser()
    if path.is_absolute():
        return None if path == original_run or original_run in path.parents else value
    if (PROJECT_ROOT / path).exists() and not (project / path).exists():
        return str(PROJECT_ROOT / path)
    return value


def reproduction_config(config: dict, project: Path, original: RunPaths, folder: Path) -> dict:
    """The recorded config, to train from the start into ``folder`` in the checked-out ``project``."""
    run = config.get("run") or {}
    config = rebased({key: value for key, value in config.items() if key != "run"}, project, original.run_dir)
    config["run"] = {**run, "res_dir": str(folder.parent.parent), "experiment": folder.parent.name,
                     "version": folder.name, "overwrite": False}
    config["ckpt_path"] = None
    return config


def train(project: Path, config_file: Path, folder: Path) -> int:
    """Fit with the checked-out project's main.py (output shown as it comes); its exit status."""
    env = {key: value for key, value in os.environ.items() if key != LOCK_FD_ENV}
    env.update(DATA_DIR=str(project_path(os.environ.get("DATA_DIR") or "data/datasets")),  # this project's data
               MLFLOW_TRACKING_URI=f"sqlite:///{folder.parent / 'mlflow.db'}",  # not the team's server
               WANDB_MODE="offline")
    command = [sys.executable, str(project / "main.py"), "fit", "-c", str(config_file)]
    return subprocess.run(command, cwd=project, env=env, check=False).returncode


# ----------------------------------------------------------------------------- the comparison

def fmt(value) -> str:
    return "-" if value is None else f"{value:.10g}" if isinstance(value, float) else str(value)


def differences(recorded: dict, reproduced: dict, tolerance: float) -> list:
    """(metric, recorded, reproduced, difference, within tolerance) for every metric either side has."""
    rows = []
    for name in dict.fromkeys([*recorded, *reproduced]):
        a, b = number(recorded.get(name)), number(reproduced.get(name))
        gap = None if a is None or b is None else b - a
        rows.append((name, recorded.get(name), reproduced.get(name), gap, gap is not None and abs(gap) <= tolerance))
    return rows


def print_table(rows) -> None:
    width = max([len("metric"), *(len(name) for name, *_ in rows)])
    print(f"{'metric':<{width}}  {'recorded':>18}  {'reproduced':>18}  {'difference':>11}")
    for name, a, b, gap, equal in rows:
        shown_gap = "-" if gap is None else "0" if gap == 0 else f"{gap:+.3g}"
        print(f"{name:<{width}}  {fmt(a):>18}  {fmt(b):>18}  {shown_gap:>11}{'' if equal else '  <- differs'}")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.tolerance < 0:
        raise UsageError(f"--tolerance must be >= 0, got {args.tolerance}")
    experiment_dir = find_experiment(args.config, args.ex_name)
    if args.v_num not in version_numbers(experiment_dir):
        raise UsageError(f"{args.ex_name!r} has no version {args.v_num} (its versions: "
                         f"{listing(version_numbers(experiment_dir))})")
    version = Version(experiment_dir, args.v_num)
    manifest, config, recorded_metrics, diff = records(version)
    code = manifest["git"]
    try:
        repository = Path(git(PROJECT_ROOT, "rev-parse", "--show-toplevel").strip())
    except (OSError, subprocess.SubprocessError):
        raise UsageError(f"{PROJECT_ROOT} is not in a git checkout now: the recorded commit cannot be checked "
                         "out") from None
    for note in notes(manifest, config):
        print(f"note: {note}")
    folder = claim_folder(version.paths.run_dir / "reproduce")
    changes = f" + {diff.name} ({len(code.get('untracked') or [])} untracked files)" if diff else ""
    print(f"reproducing {version.label}: commit {code['commit'][:12]}{changes}, seed {config.get('seed_everything')}, "
          f"into {shown(folder)}", flush=True)
    try:
        with checked_out(repository, code["commit"], diff) as worktree:
            project = worktree / (code.get("path") or "")
            config_file = worktree.parent / "config.yaml"
            config_file.write_text(yaml.safe_dump(reproduction_config(config, project, version.paths, folder),
                                                  sort_keys=False))
            exit_status = train(project, config_file, folder)
    except CodeStateError as error:
        folder.rmdir()
        raise UsageError(f"{version.label}: {error}") from None
    if exit_status != 0:
        print(f"ERROR: the reproduction of {version.label} failed (exit status {exit_status}; its output is above, "
              f"its folder {shown(folder)})", file=sys.stderr)
        return 1
    reproduced = RunPaths(folder.parent.parent, folder.parent.name, folder.name)
    rows = differences(compared_metrics(recorded_metrics), compared_metrics(read_json(reproduced.metrics_file, {})),
                       args.tolerance)
    print_table(rows)
    differing = [row for row in rows if not row[4]]
    write_json_atomic(folder / "reproduction.json", {
        "version": version.label, "commit": code["commit"], "diff": diff.name if diff else None,
        "tolerance": args.tolerance, "reproduced": not differing,
        "metrics": [{"metric": name, "recorded": a, "reproduced": b, "difference": gap, "equal": equal}
                    for name, a, b, gap, equal in rows]})
    if differing:
        listed = ", ".join(f"{name} ({'missing' if gap is None else f'{gap:+.3g}'})"
                           for name, _, _, gap, _ in differing)
        print(f"NOT reproduced: {len(differing)} of {len(rows)} metrics differ by more than {args.tolerance:g}: "
              f"{listed}")
        return 1
    print(f"reproduced: all {len(rows)} metrics within {args.tolerance:g} of the recorded ones "
          f"({shown(folder / 'reproduction.json')})")
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
