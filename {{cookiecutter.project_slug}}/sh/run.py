"""Run experiment versions: ``main.py fit -c config/<exp>/share.yaml -c config/<exp>/version_k/version.yaml``.

    python sh/run.py -e baseline -v 0                          # one version
    python sh/run.py -e baseline -n 0 2 5                      # a list of versions
    python sh/run.py -e baseline -b 2 -t 6                     # versions 2, 3, 4, 5 (half-open range)
    python sh/run.py -e baseline --all_ver --jobs 2            # every version, two at a time
    python sh/run.py --all_ex                                  # every version of every experiment
    python sh/run.py -e baseline --all_ver --gpus 0,1,2,3 --gpus-per-run 2
    python sh/run.py -e baseline --all_ver --resume            # continue unfinished versions from their checkpoints
    python sh/run.py -e baseline -v 0 -o "--trainer.max_epochs=3" --dry-run

Each run's output goes to ``<run dir>/run.log``; the runner holds a lock on ``<run dir>/.lock``
while a version runs, so two runners never run one version twice. A finished version is
skipped unless --rerun. Works from any folder; imports no torch, so it starts at once.
"""
import argparse
import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _project import (  # noqa: E402
    PROJECT_ROOT,
    ArgumentParser,
    UsageError,
    check_experiment_name,
    exit_on_usage_error,
    experiment_names,
    project_path,
    shown,
    user_path,
    version_numbers,
)

from runtime.nvidia_smi import query_gpus, visible_gpus  # noqa: E402 (_project put the project on sys.path)
from runtime.outputs import LOCK_FD_ENV, RunPaths  # noqa: E402

DEFAULT_RES_DIR = "res"
POLL_SECONDS = 0.1
UNFINISHED = ("failed", "interrupted", "killed", "unknown")
RESUME_SOURCES = {"last": "checkpoints/last.ckpt",
                  "hpc": "the checkpoint Lightning saved at preemption (hpc_ckpt_*.ckpt)"}
DONE = ("finished", "pruned")  # pruned: an optuna trial its pruner stopped early, complete as far as it goes


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_argument_group("which versions")
    which.add_argument("-e", "--ex_name", help="experiment to run")
    which.add_argument("-v", "--v_num", type=int, help="run version_K")
    which.add_argument("-n", type=int, nargs="+", metavar="K", help="run these versions")
    which.add_argument("-b", "--begin_ver", type=int, help="first version of a half-open range (default: the first)")
    which.add_argument("-t", "--end_ver", type=int, help="end of the range, not run (default: after the last)")
    which.add_argument("--all_ver", action="store_true", help="every version of -e")
    which.add_argument("--all_ex", action="store_true", help="every version of every experiment")
    parser.add_path_argument("-c", "--config", default="config", help="config folder")
    parser.add_arguments_option("-o", "--other_para", action="append", default=[],
                                help='extra main.py arguments, e.g. "--trainer.max_epochs=3" (may be repeated)')
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--jobs", type=int, help="versions run at once (default 1, or one per GPU group)")
    parser.add_argument("--gpus", help="GPU ids shared out to the runs through CUDA_VISIBLE_DEVICES, e.g. 0,1,2,3")
    parser.add_argument("--gpus-per-run", type=int, default=1, help="GPUs each run gets (default 1)")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue unfinished versions from their newest checkpoint (last or SLURM preemption)")
    again.add_argument("--rerun", action="store_true", help="run finished versions again, replacing their results")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Version:
    """One version of an experiment: its two config files and the folder its results go to."""

    experiment_dir: Path
    number: int
    paths: RunPaths

    @property
    def label(self) -> str:
        return f"{self.experiment_dir.name}/version_{self.number}"

    @property
    def config_files(self) -> tuple[Path, Path]:
        return config_files(self.experiment_dir, self.number)


def config_files(experiment_dir: Path, number: int) -> tuple[Path, Path]:
    """share.yaml of the experiment and version.yaml of version ``number``."""
    return experiment_dir / "share.yaml", experiment_dir / f"version_{number}" / "version.yaml"


def _run_section(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise UsageError(f"{path} is not valid YAML: {' '.join(str(error).split())}") from None
    run = data.get("run") if isinstance(data, dict) else None
    return run if isinstance(run, dict) else {}


def _config_file(main_args, i):
    """The file of a ``-c FILE`` / ``--config FILE`` / ``--config=FILE`` at ``main_args[i]``, else None."""
    token = main_args[i]
    if token in ("-c", "--config") and i + 1 < len(main_args):
        return main_args[i + 1]
    return token.split("=", 1)[1] if token.startswith("--config=") else None


def _run_overrides(main_args) -> dict:
    """``run:`` settings given on main.py's command line: in config files (``-c FILE``), then
    ``--run.res_dir/experiment/version`` (both ``--k=v`` and ``--k v``), later ones winning."""
    found = {}
    for i, token in enumerate(main_args):
        config = _config_file(main_args, i)
        if config is not None:
            if not Path(config).is_file():
                raise UsageError(f"-o/--other_para: config file {config} not found")
            found.update(_run_section(Path(config)))
        for key in ("res_dir", "experiment", "version"):
            flag = f"--run.{key}"
            if token.startswith(flag + "="):
                found[key] = token.split("=", 1)[1]
            elif token == flag and i + 1 < len(main_args):
                found[key] = main_args[i + 1]
    return found


def resolve_version(experiment_dir: Path, number: int, main_args=()) -> Version:
    """Where version ``number`` writes: the ``run:`` keys of share.yaml, then version.yaml, then main_args."""
    share, version_yaml = config_files(experiment_dir, number)
    run = {"res_dir": DEFAULT_RES_DIR, **_run_section(share), **_run_section(version_yaml), **_run_overrides(main_args)}
    for key in ("experiment", "version"):
        if not run.get(key):
            raise UsageError(f"{version_yaml} sets no run.{key}: "
                             "every version needs its own run.experiment and run.version")
    paths = RunPaths(project_path(str(run["res_dir"])), str(run["experiment"]), str(run["version"]))
    return Version(experiment_dir, number, paths)


def experiment_results_dir(experiment_dir: Path, main_args=()) -> Path:
    """``<res_dir>/<experiment>``: where the experiment's runs (and its report, study) go, by its share.yaml."""
    run = {"res_dir": DEFAULT_RES_DIR, **_run_section(experiment_dir / "share.yaml"), **_run_overrides(main_args)}
    return project_path(str(run["res_dir"])) / experiment_dir.name


def split_main_args(texts) -> list:
    """-o/--other_para (given once or more) as one argument list, each split like a shell would."""
    arguments = []
    for text in [texts] if isinstance(texts, str) else texts:
        try:
            arguments += shlex.split(text)
        except ValueError as error:
            raise UsageError(f"-o/--other_para {text!r}: {error}") from None
    # main.py runs in the project folder: config files named from here are handed over absolute.
    for i in range(len(arguments)):
        config = _config_file(arguments, i)
        found = None if config is None else user_path(config)
        if found is None or not found.is_file():
            continue
        if arguments[i].startswith("--config="):
            arguments[i] = f"--config={found}"
        else:
            arguments[i + 1] = str(found)
    return arguments


def _listing(numbers) -> str:
    return ", ".join(map(str, numbers)) or "none"


def _chosen_numbers(args, experiment_dir: Path) -> list[int]:
    """The version numbers of one experiment picked by exactly one of -v, -n, -b/-t, --all_ver."""
    name, existing = experiment_dir.name, version_numbers(experiment_dir)
    if not existing:
        raise UsageError(f"experiment {name!r} has no versions (add some with sh/structure.py)")
    ways = [flag for flag, given in (("-v", args.v_num is not None), ("-n", args.n is not None),
                                     ("-b/-t", args.begin_ver is not None or args.end_ver is not None),
                                     ("--all_ver", args.all_ver)) if given]
    if not ways:
        raise UsageError(f"say which versions of {name!r} to run: -v K, -n K [K ...], -b B -t T or --all_ver")
    if len(ways) > 1:
        raise UsageError(f"choose versions one way, got {' and '.join(ways)}")
    if args.all_ver:
        return existing
    if args.v_num is not None or args.n is not None:
        wanted = [args.v_num] if args.v_num is not None else list(dict.fromkeys(args.n))
        missing = [k for k in wanted if k not in existing]
        if missing:
            raise UsageError(f"{name!r} has no version {_listing(missing)} (its versions: {_listing(existing)})")
        return wanted
    begin = args.begin_ver if args.begin_ver is not None else existing[0]
    end = args.end_ver if args.end_ver is not None else existing[-1] + 1
    negative = [f"{flag} {value}" for flag, value in (("-b", args.begin_ver), ("-t", args.end_ver))
                if value is not None and value < 0]
    if negative:
        raise UsageError(f"version numbers are never negative, got {' '.join(negative)}")
    if begin >= end:
        raise UsageError(f"empty range -b {begin} -t {end}: the range is half-open, -b B -t T runs B .. T-1")
    chosen = [k for k in existing if begin <= k < end]
    if not chosen:
        raise UsageError(f"{name!r} has no version in [{begin}, {end}) (its versions: {_listing(existing)})")
    return chosen


def select_versions(args, main_args=()) -> list[Version]:
    """The versions the command line asks for, with their result folders; UsageError when that is unclear."""
    config_dir = args.config
    if not config_dir.is_dir():
        raise UsageError(f"config folder {config_dir} does not exist")
    if args.all_ex:
        extra = [flag for flag, given in (("-e", args.ex_name), ("-v", args.v_num is not None), ("-n", args.n),
                                          ("-b", args.begin_ver is not None), ("-t", args.end_ver is not None),
                                          ("--all_ver", args.all_ver)) if given]
        if extra:
            raise UsageError(f"--all_ex runs every version of every experiment: drop {' '.join(extra)} "
                             "(for every version of one experiment use -e NAME --all_ver)")
        chosen = [(config_dir / name, k) for name in experiment_names(config_dir)
                  for k in version_numbers(config_dir / name)]
        if not chosen:
            raise UsageError(f"no experiment versions under {config_dir} (create some with sh/structure.py)")
    else:
        if not args.ex_name:
            raise UsageError("say which experiment to run: -e NAME, or --all_ex for all of them")
        experiment_dir = config_dir / check_experiment_name(args.ex_name)
        if not (experiment_dir / "share.yaml").is_file():
            raise UsageError(f"experiment {args.ex_name!r} not found in {config_dir} "
                             f"(experiments: {', '.join(experiment_names(config_dir)) or 'none'})")
        chosen = [(experiment_dir, k) for k in _chosen_numbers(args, experiment_dir)]
    versions = [resolve_version(experiment_dir, k, main_args) for experiment_dir, k in chosen]
    check_own_folders(versions, config_dir, main_args)
    return versions


def check_own_folders(versions, config_dir: Path, main_args=()) -> None:
    """UsageError when a chosen version would write into the results folder of any other version
    (a version.yaml copied without changing its run.version), chosen or not."""
    chosen = {(version.experiment_dir, version.number) for version in versions}
    owners = {}
    for name in experiment_names(config_dir):
        for k in version_numbers(config_dir / name):
            if (config_dir / name, k) in chosen:
                continue
            try:
                other = resolve_version(config_dir / name, k)  # -o is for the chosen versions only
            except UsageError:
                continue  # a broken version that is not run here
            owners.setdefault(other.paths.run_dir, other)
    for version in versions:
        other = owners.setdefault(version.paths.run_dir, version)
        if other is not version:
            raise UsageError(f"{other.label} and {version.label} both write to {shown(version.paths.run_dir)}: "
                             "give each version its own run.version (in its version.yaml, or in -o)")


# ----------------------------------------------------------------------------- state of a run folder

def read_json_or_none(path: Path) -> Optional[dict]:
    """A JSON object from ``path``, or None when it is missing or unreadable (never raises)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def try_lock(path: Path) -> Optional[int]:
    """An open descriptor holding an exclusive flock on ``path``, or None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def lock_is_held(path: Path) -> bool:
    """Whether some process holds the lock on ``path`` (False when the file does not exist)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def run_status(paths: RunPaths, locked_by_us: bool = False) -> str:
    """new | running | killed | finished | failed | interrupted | unknown, from the run folder.

    A run holds its version's lock while it trains (main.py or sh/run.py on its behalf), so
    ``running`` in manifest.json with the lock free means the run was killed. A run.log without
    a manifest is a run that failed before training started (a config error), unless it is
    still starting. Pass ``locked_by_us`` when the caller holds the lock itself.
    """
    if not locked_by_us and lock_is_held(paths.lock_file):
        return "running"  # whatever an earlier run's manifest says: a --rerun may be replacing it
    manifest = read_json_or_none(paths.manifest_file) or {}
    status = manifest.get("status")
    if status is None:
        status = ((read_json_or_none(paths.metrics_file) or {}).get("fit") or {}).get("status")
    if status is None:
        if paths.result_entries():
            return "unknown"
        return "failed" if paths.log_file.is_file() else "new"
    return "killed" if status == "running" else str(status)


def run_summary(paths: Optional[RunPaths]) -> dict:
    """Duration (all attempts), best validation score, epochs and test metrics of a run folder (None when absent,
    and for no folder at all)."""
    manifest = (read_json_or_none(paths.manifest_file) if paths else None) or {}
    metrics = (read_json_or_none(paths.metrics_file) if paths else None) or {}
    fit = metrics.get("fit") or {}
    attempts = [manifest, *manifest.get("earlier_attempts", [])] if manifest else []
    durations = [a["duration_s"] for a in attempts if isinstance(a.get("duration_s"), (int, float))]
    return {
        "duration_s": sum(durations) if durations else fit.get("duration_s"),
        "monitor": fit.get("monitor"),
        "best_score": fit.get("best_score"),
        "epochs": fit.get("epochs"),
        "test": metrics.get("test") or dict(),
    }


# ----------------------------------------------------------------------------- what to do with a version

@dataclass(frozen=True)
class Plan:
    """What the runner does with a version: a main.py command, or a reason not to run it."""

    version: Version
    command: Optional[list]
    note: str = ""
    outcome: str = ""  # for a version not run: skipped | blocked
    resume: bool = False


def fit_command(version: Version, extra=(), main_args=()) -> list:
    """The main.py command line that trains ``version``."""
    share, version_yaml = version.config_files
    return [sys.executable, str(PROJECT_ROOT / "main.py"), "fit", "-c", str(share), "-c", str(version_yaml),
            *extra, *main_args]


def gives_checkpoint(main_args) -> bool:
    """Whether main.py's arguments already say which checkpoint to start from."""
    return any(arg == "--ckpt_path" or arg.startswith("--ckpt_path=") for arg in main_args)


def resume_arguments(run_dir: Path, main_args) -> list:
    """``--ckpt_path hpc|last`` for the newest checkpoint of ``run_dir``; nothing when there is none or one is given."""
    if gives_checkpoint(main_args):
        return []
    candidates = {path: "hpc" for path in run_dir.glob("hpc_ckpt_*.ckpt")}
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        candidates[run_dir / "checkpoints" / "last.ckpt"] = "last"
    if not candidates:
        return []
    return ["--ckpt_path", candidates[max(candidates, key=lambda path: path.stat().st_mtime)]]


def plan_run(version: Version, status: str, mode: Optional[str], main_args=()) -> Plan:
    """Decide from the version's status and ``mode`` (None, "resume" or "rerun") whether and how it runs."""
    if status == "running":
        return Plan(version, None, "running elsewhere", "skipped")
    if mode == "rerun":
        return Plan(version, fit_command(version, ["--run.overwrite", "true"], main_args), "start over")
    if status in DONE:
        return Plan(version, None, f"{status} (--rerun runs it again)", "skipped")
    if status in UNFINISHED and version.paths.result_entries():
        if mode != "resume":
            return Plan(version, None, f"{status} run left results: --resume continues it, --rerun starts over",
                        "blocked")
        resume = resume_arguments(version.paths.run_dir, main_args)
        if resume or gives_checkpoint(main_args):
            source = RESUME_SOURCES[resume[1]] if resume else "the --ckpt_path given in -o"
            return Plan(version, fit_command(version, resume, main_args), f"resume from {source}", resume=True)
        return Plan(version, fit_command(version, ["--run.overwrite", "true"], main_args),
                    f"{status}, no checkpoint to resume: start over")
    return Plan(version, fit_command(version, (), main_args))


# ----------------------------------------------------------------------------- running

@dataclass
class Outcome:
    version: Version
    status: str  # finished | pruned | failed | interrupted | skipped | blocked
    note: str = ""
    duration_s: Optional[float] = None
    has_results: bool = True  # False: not run by anyone yet, or running elsewhere: its folder says nothing of it

    @property
    def ok(self) -> bool:
        return self.status in (*DONE, "skipped")


def run_environment(gpu_ids, threads: Optional[int]) -> dict:
    """The variables a run gets on top of run.py's environment: its GPUs, or its share of the CPU threads."""
    if gpu_ids is not None:
        return {"CUDA_VISIBLE_DEVICES": ",".join(gpu_ids)}
    if threads and "OMP_NUM_THREADS" not in os.environ:
        return {"OMP_NUM_THREADS": str(threads)}
    return {}


def cpu_threads(jobs: int) -> Optional[int]:
    """Threads per run when ``jobs`` runs share this machine's cores; None for one run at a time."""
    return max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None


class ActiveRun:
    """A main.py process started for a version; owns its log file and the version's lock."""

    def __init__(self, plan: Plan, lock_fd: int, gpu_ids, threads: Optional[int]):
        self.plan, self.lock_fd, self.gpu_ids = plan, lock_fd, gpu_ids
        env = {**os.environ, LOCK_FD_ENV: str(lock_fd), **run_environment(gpu_ids, threads)}
        self.log = open(plan.version.paths.log_file, "a" if plan.resume else "w")
        self.log.write(f"$ {shlex.join(plan.command)}\n")
        self.log.flush()
        self.started = time.monotonic()
        self.process = subprocess.Popen(plan.command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT, env=env, pass_fds=(lock_fd,))

    def close(self, status: str, note: str = "") -> Outcome:
        self.log.close()
        os.close(self.lock_fd)
        return Outcome(self.plan.version, status, note, round(time.monotonic() - self.started, 1))

    def pruned(self) -> bool:
        return (read_json_or_none(self.plan.version.paths.manifest_file) or {}).get("status") == "pruned"

    def finish(self) -> Outcome:
        code = self.process.returncode
        if code == 0:
            return self.close("pruned" if self.pruned() else "finished")
        return self.close("failed", f"exit {code}: {_last_line(self.plan.version.paths.log_file)}")


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def start(version: Version, mode: Optional[str], main_args, gpu_ids=None, threads=None):
    """Lock the version and start it; an Outcome instead when it is not run (busy, finished, blocked)."""
    version.paths.run_dir.mkdir(parents=True, exist_ok=True)
    lock_fd = try_lock(version.paths.lock_file)
    if lock_fd is None:
        return Outcome(version, "skipped", "running elsewhere", has_results=False)
    try:
        plan = plan_run(version, run_status(version.paths, locked_by_us=True), mode, main_args)
        if plan.command is None:
            os.close(lock_fd)
            return Outcome(version, plan.outcome, plan.note)
        return ActiveRun(plan, lock_fd, gpu_ids, threads)
    except BaseException:
        os.close(lock_fd)
        raise


class Terminated(Exception):
    """run.py got SIGTERM (a cluster's scheduler, ``kill``): its runs are stopped like on Ctrl-C."""


def _raise_terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the stopping itself is not interrupted again
    raise Terminated


def _stop(active: ActiveRun, forward: Optional[int] = None) -> None:
    """Let an interrupted run shut down (it got Ctrl-C too, or gets ``forward`` or SIGINT now); kill it if it hangs."""
    if forward is not None and active.process.poll() is None:
        active.process.send_signal(forward)  # Lightning stops cleanly on SIGTERM too
    try:
        active.process.wait(timeout=5)
        return
    except subprocess.TimeoutExpired:
        active.process.send_signal(signal.SIGINT)
    try:
        active.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        active.process.kill()
        active.process.wait()


def run_versions(versions, mode=None, main_args=(), jobs=1, gpus=None, gpus_per_run=1, say=print) -> list:
    """Run ``versions`` at most ``jobs`` at a time (each given ``gpus_per_run`` free ids of ``gpus``); one Outcome each.

    A failing version does not stop the others. On Ctrl-C the runs in progress are interrupted,
    nothing new starts, and every version still gets an Outcome.
    """
    total, outcomes, running = len(versions), {}, {}
    pending = deque(enumerate(versions, 1))
    free_gpus = list(gpus) if gpus is not None else None
    threads = cpu_threads(jobs)
    for i, version in pending:
        say(f"[{i}/{total}] queued      {version.label}")

    def announce(i, outcome):
        outcomes[outcome.version] = outcome
        took = f" in {outcome.duration_s:.1f}s" if outcome.duration_s is not None else ""
        note = f": {outcome.note}" if outcome.note else ""
        say(f"[{i}/{total}] {outcome.status:<11} {outcome.version.label}{took}{note}")

    try:
        while pending or running:
            while pending and len(running) < jobs and (free_gpus is None or len(free_gpus) >= gpus_per_run):
                i, version = pending.popleft()
                gpu_ids = None if free_gpus is None else [free_gpus.pop(0) for _ in range(gpus_per_run)]
                active = start(version, mode, main_args, gpu_ids, threads)
                if isinstance(active, Outcome):
                    if gpu_ids is not None:
                        free_gpus[:0] = gpu_ids
                    announce(i, active)
                    continue
                running[active] = i
                on = f" on GPU {','.join(gpu_ids)}" if gpu_ids is not None else ""
                note = f" ({active.plan.note})" if active.plan.note else ""
                say(f"[{i}/{total}] started     {version.label}{on}{note}, log: {shown(version.paths.log_file)}")
            time.sleep(POLL_SECONDS)
            for active in [a for a in running if a.process.poll() is not None]:
                i = running.pop(active)
                if active.gpu_ids is not None:
                    free_gpus.extend(active.gpu_ids)
                    free_gpus.sort(key=gpus.index)
                announce(i, active.finish())
    except (KeyboardInterrupt, Terminated) as stop:
        why = "stopped by SIGTERM" if isinstance(stop, Terminated) else "stopped by Ctrl-C"
        for active, i in running.items():
            _stop(active, forward=signal.SIGTERM if isinstance(stop, Terminated) else None)
            announce(i, active.close("interrupted", why))
        for i, version in pending:
            announce(i, Outcome(version, "interrupted", "not started", has_results=False))
    return [outcomes[version] for version in versions]


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def _test_key(summaries, monitor: str) -> str:
    """The test metric matching the monitored one (val/acc -> test/acc), else the first one recorded."""
    keys = sorted({key for summary in summaries for key in summary["test"]})
    matching = f"test/{monitor.split('/')[-1]}"
    return matching if matching in keys else (keys[0] if keys else "test")


def results_table(outcomes) -> str:
    """version | status | duration | best validation metric | test metric, one line per outcome."""
    summaries = [run_summary(outcome.version.paths) if outcome.has_results else run_summary(None)
                 for outcome in outcomes]
    monitor = next((summary["monitor"] for summary in summaries if summary["monitor"]), "val")  # "best val"
    test_key = _test_key(summaries, monitor)
    rows = [("version", "status", "duration", f"best {monitor}", test_key)]
    for outcome, summary in zip(outcomes, summaries, strict=True):
        duration = outcome.duration_s if outcome.duration_s is not None else summary["duration_s"]
        status = outcome.status + (f": {outcome.note}" if outcome.status in ("skipped", "blocked") else "")
        rows.append((outcome.version.label, status, f"{duration:.1f}s" if isinstance(duration, (int, float)) else "-",
                     _number(summary["best_score"]), _number(summary["test"].get(test_key))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _gpu_ids(args) -> Optional[list]:
    if args.gpus is None:
        if args.gpus_per_run != 1:
            raise UsageError("--gpus-per-run needs --gpus (the GPU ids to share out)")
        return None
    ids = [part.strip() for part in args.gpus.split(",") if part.strip()]
    if not ids or len(set(ids)) != len(ids) or not all(part.isdigit() for part in ids):
        raise UsageError(f"--gpus {args.gpus!r} must be distinct GPU ids separated by commas, e.g. 0,1,2,3")
    if not 1 <= args.gpus_per_run <= len(ids):
        raise UsageError(f"--gpus-per-run {args.gpus_per_run} must be between 1 and the {len(ids)} GPUs given")
    machine = query_gpus()
    if not machine:
        raise UsageError("--gpus needs NVIDIA GPUs, and nvidia-smi finds none on this machine "
                         "(without --gpus, versions run on what trainer.accelerator picks)")
    missing = [i for i in ids if int(i) not in {gpu.index for gpu in machine}]
    if missing:
        raise UsageError(f"--gpus {args.gpus}: this machine has no GPU {', '.join(missing)} "
                         f"(nvidia-smi lists {', '.join(str(gpu.index) for gpu in machine)})")
    allowed = os.environ.get("CUDA_VISIBLE_DEVICES")
    visible = None if allowed is None else visible_gpus(machine, allowed)  # None: no allocation, or unmappable
    outside = [i for i in ids if int(i) not in {gpu.index for gpu in visible}] if visible is not None else []
    if outside:  # a scheduler's allocation: the runs must stay inside it
        raise UsageError(f"--gpus {args.gpus}: GPU {', '.join(outside)} is outside CUDA_VISIBLE_DEVICES={allowed}, "
                         f"the GPUs this job may use ({', '.join(str(gpu.index) for gpu in visible) or 'none'}, "
                         "numbered as nvidia-smi does)")
    return ids


def print_dry_run(versions, mode, main_args, jobs: int, gpus, gpus_per_run: int) -> None:
    """The command of each version, with the variables run.py would add; GPUs as if runs ended in turn."""
    groups = [gpus[i:i + gpus_per_run] for i in range(0, len(gpus) - gpus_per_run + 1, gpus_per_run)] if gpus else []
    if groups:
        print(f"# GPU queue: {len(groups)} runs at a time; each gets the next free group of {gpus_per_run}")
    started = 0
    for version in versions:
        plan = plan_run(version, run_status(version.paths), mode, main_args)
        if plan.command is None:
            print(f"# {plan.outcome} {version.label}: {plan.note}")
            continue
        gpu_ids = groups[started % len(groups)] if groups else None
        variables = run_environment(gpu_ids, cpu_threads(jobs))
        print(" ".join([*(f"{key}={value}" for key, value in variables.items()), shlex.join(plan.command)]))
        started += 1


def main(argv=None) -> int:
    args = parse_args(argv)
    main_args = split_main_args(args.other_para)
    gpus = _gpu_ids(args)
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    jobs = args.jobs or (len(gpus) // args.gpus_per_run if gpus else 1)
    versions = select_versions(args, main_args)
    mode = "resume" if args.resume else "rerun" if args.rerun else None
    if args.dry_run:
        print_dry_run(versions, mode, main_args, jobs, gpus, args.gpus_per_run)
        return 0
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        outcomes = run_versions(versions, mode, main_args, jobs, gpus, args.gpus_per_run,
                                say=lambda line: print(line, flush=True))
        terminated = signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # the handler fired
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("\n" + results_table(outcomes), flush=True)
    if terminated:
        return 128 + signal.SIGTERM
    if any(outcome.status == "interrupted" for outcome in outcomes):
        return 130
    return 0 if all(outcome.ok for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
