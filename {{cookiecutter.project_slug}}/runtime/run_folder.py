"""A run's folder, ``<res_dir>/<experiment>/<version>/``: its paths, atomic files, lock, records and status.

The one rule for a run's identity: a version's config folder names its results folder
(``config/<exp>/version_k/version.yaml`` -> ``res/<exp>/version_k``), as if that version.yaml ended with
``run.experiment: <exp>`` and ``run.version: version_k``; whatever comes after it (a debug preset, a
``--run.*`` option) overrides it, as later settings always do. A run started from other configs names
its folder with ``run.experiment`` / ``run.version``.

Standard library only: main.py and the scripts in sh/ (the cookiecutter hook too) share it without torch.
"""
import csv
import errno
import fcntl
import json
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Optional

from contract import PROJECT_ROOT, ConfigError, check_checkpoint, project_path

from .errors import cause_of_type

# An experiment or version name: one folder level, no hidden or parent folder, no spaces.
FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VERSION_DIR = re.compile(r"^version_(\d+)$")
SCRATCH_VERSION = "debug"  # config/debug presets write here; each fit into it replaces the one before
LOCK_FD_ENV = "RUN_LOCK_FD"  # sh/run.py tells main.py which inherited descriptor holds the run's lock
DONE = ("finished", "pruned")  # pruned: an optuna trial its pruner stopped early, complete as far as it goes
UNFINISHED = ("failed", "interrupted", "killed", "unknown")


# ----------------------------------------------------------------------------- paths and names

def user_path(path) -> Path:
    """A path typed on a command line, made absolute.

    A relative path names what exists from the current folder, else what exists in the project
    (so ``-s config/search/grid.yaml`` works from any folder); a path not made yet goes beside the
    current folder when its parent folder is there, else into the project.
    """
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    here, in_project = Path.cwd() / path, PROJECT_ROOT / path
    if here.exists():
        return here
    if in_project.exists() or not here.parent.is_dir():
        return in_project
    return here


def folder_name_problem(what: str, name) -> str:
    """Why ``name`` cannot be the folder of an experiment or version (``what``), or '' when it can."""
    name = str(name)
    if FOLDER_NAME.match(name) and ".." not in name:
        return ""
    return (f"{what} name {name!r} is not a safe folder name "
            "(letters, digits, '_', '-', '.'; no '/', spaces or '..'; at most 64 characters)")


def version_identity(config_file) -> dict:
    """The ``run:`` settings a config file's place implies: a version.yaml in ``<exp>/version_k/`` names
    both, a share.yaml in ``<exp>/`` names the experiment; any other file nothing."""
    path = Path(config_file)
    if path.name == "version.yaml" and VERSION_DIR.match(path.parent.name):
        return {"experiment": path.parent.parent.name, "version": path.parent.name}
    if path.name == "share.yaml" and path.parent.name:
        return {"experiment": path.parent.name}
    return {}


def config_file_at(args, i: int) -> Optional[str]:
    """The file of a ``-c FILE`` / ``--config FILE`` / ``--config=FILE`` at ``args[i]``, else None."""
    token = str(args[i])
    if token in ("-c", "--config") and i + 1 < len(args):
        return str(args[i + 1])
    return token.split("=", 1)[1] if token.startswith("--config=") else None


def with_version_identity(args) -> list:
    """main.py's arguments with the identity rule applied: ``--run.experiment/--run.version`` inserted
    right after each config file whose place names them (see the module docstring)."""
    args, out, i = [str(arg) for arg in args], [], 0
    while i < len(args):
        config = config_file_at(args, i)
        step = 1 if config is None or args[i].startswith("--config=") else 2
        out += args[i:i + step]
        if config is not None:
            out += [f"--run.{key}={value}" for key, value in version_identity(config).items()]
        i += step
    return out


class InRunFolder:
    """A file or folder of a run folder, as an attribute of RunPaths: ``RunPaths(...).metrics_file``."""

    def __init__(self, *parts: str):
        self.parts = parts

    def __get__(self, paths, owner=None):
        return self if paths is None else paths.run_dir.joinpath(*self.parts)


@dataclass(frozen=True)
class RunPaths:
    """The files of one run. ``run.log`` and ``.lock`` belong to sh/run.py, not to the run's results."""

    res_dir: Path
    experiment: str
    version: str

    checkpoint_dir = InRunFolder("checkpoints")
    last_checkpoint = InRunFolder("checkpoints", "last.ckpt")
    config_file = InRunFolder("config.yaml")
    metrics_file = InRunFolder("metrics.json")
    manifest_file = InRunFolder("manifest.json")
    history_file = InRunFolder("history.csv")
    predictions_file = InRunFolder("predictions.csv")
    log_file = InRunFolder("run.log")
    lock_file = InRunFolder(".lock")

    @classmethod
    def from_config(cls, run_config) -> "RunPaths":
        return cls(project_path(run_config.res_dir), run_config.experiment, run_config.version)

    @property
    def run_dir(self) -> Path:
        return self.res_dir / self.experiment / self.version

    @property
    def is_scratch(self) -> bool:
        return self.version == SCRATCH_VERSION

    @property
    def mlflow_store(self) -> Path:
        return self.res_dir / "mlflow.db"

    def name_problem(self) -> str:
        """Why the experiment or version cannot name a results folder, or '' (e.g. '' or '..' would write
        outside the version's folder, and --run.overwrite would then remove other runs' results)."""
        return (folder_name_problem("run.experiment", self.experiment)
                or folder_name_problem("run.version", self.version))

    def result_entries(self) -> list[Path]:
        """What runs left in the folder: everything but sh/run.py's log and lock."""
        if not self.run_dir.is_dir():
            return []
        return sorted(p for p in self.run_dir.iterdir() if p not in (self.log_file, self.lock_file))


def flatten(tree, prefix="") -> dict:
    """Nested mappings as dotted keys: a: (b: 1) -> a.b: 1."""
    flat = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


# ----------------------------------------------------------------------------- files

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, over quota, over the file-size limit: alike
PAUSE_WRITING_ENV = "RESEARCH_TEST_PAUSE_WRITING"  # test-only: a file name whose writes stop after the first chunk


class ResultsNotWritten(OSError):
    """A results file could not be written (a full disk, a quota, permissions); main.py prints one ``ERROR:`` line."""

    def __str__(self) -> str:
        return self.strerror


def write_problem(error: OSError, path=None) -> str:
    """One line: which file could not be written, and why."""
    target = path or error.filename or "a results file"
    why = "the disk is full (or over its quota or file-size limit)" if error.errno in DISK_FULL else "it failed"
    return f"could not write {target}: {why} ({error.strerror or error})"


class _PausedHalfway:
    """Test-only (``PAUSE_WRITING_ENV``): writes the first chunk, marks ``<file>.paused`` and sleeps, so that a
    test can kill the process in the middle of a write."""

    def __init__(self, file, path: Path):
        self.file, self.path = file, path

    def write(self, data):
        written = self.file.write(data)
        self.file.flush()
        Path(f"{self.path}.paused").touch()
        time.sleep(3600)
        return written

    def __getattr__(self, name):
        return getattr(self.file, name)


@contextmanager
def atomic_file(path, mode: str = "w"):
    """Open a temporary file beside ``path`` for writing; on success it is synced and renamed over ``path``.

    A crash or an exception inside the block leaves ``path`` as it was and no temporary behind; a write
    that fails (a full disk, no permission) raises ResultsNotWritten naming ``path``.
    The file gets the permissions a plain ``open(path, "w")`` would give (0666 minus the umask),
    not mkstemp's private 0600, so results stay readable by the group on a shared cluster.
    """
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield _PausedHalfway(f, path) if os.environ.get(PAUSE_WRITING_ENV) == path.name else f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        failed = cause_of_type(error, (OSError,))  # torch's writer raises "unexpected pos" from the OSError
        if failed is not None and not isinstance(failed, ResultsNotWritten):
            raise ResultsNotWritten(failed.errno, write_problem(failed, path)) from error
        raise


HALF_WRITTEN = re.compile(r"\..+\.[a-z0-9_]{8}")  # atomic_file's temporaries: ".<name>.<mkstemp's 8 characters>"


def remove_half_written(folder: Path) -> None:
    """Delete the temporaries a process killed in the middle of a write left under ``folder`` (call it holding the
    folder's lock: then no write is under way)."""
    for path in folder.rglob(".*") if folder.is_dir() else ():
        if path.is_file() and HALF_WRITTEN.fullmatch(path.name):
            path.unlink(missing_ok=True)


def write_text_atomic(path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    with atomic_file(path) as f:
        f.write(text)


def write_json_atomic(path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_csv_atomic(path, columns, rows, line_end: str = "\n") -> None:
    """Replace ``path`` with a CSV file of ``rows`` (dicts, or sequences in the order of ``columns``)."""
    with atomic_file(path) as f:
        if rows and isinstance(rows[0], dict):
            writer = csv.DictWriter(f, fieldnames=columns, lineterminator=line_end)
            writer.writeheader()
        else:
            writer = csv.writer(f, lineterminator=line_end)
            writer.writerow(columns)
        writer.writerows(rows)


def read_json(path, default=None):
    """A JSON object from ``path``; ``default`` when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default
    return data if isinstance(data, dict) else default


def read_csv(path) -> list:
    """The rows of a CSV file as dicts of strings; empty when the file is missing or unreadable."""
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def number(value) -> Optional[float]:
    """A CSV or JSON cell as a float; None for an empty, non-numeric or NaN cell."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if result != result else result


# ----------------------------------------------------------------------------- lock and guard

def try_lock(path: Path) -> Optional[int]:
    """An open descriptor holding an exclusive flock on ``path``, or None when another process holds it;
    ResultsNotWritten when its folder cannot be made (a file in the way, no permission, a full disk)."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise ResultsNotWritten(error.errno, write_problem(error, path)) from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
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


def inherited_lock(paths: RunPaths) -> bool:
    """Whether sh/run.py started this process holding the run's lock for it (``RUN_LOCK_FD``)."""
    inherited = os.environ.get(LOCK_FD_ENV, "")
    if not inherited.isdigit() or not paths.lock_file.exists():
        return False
    try:
        return os.path.samestat(os.fstat(int(inherited)), os.stat(paths.lock_file))
    except OSError:
        return False


def hold_lock(paths: RunPaths) -> Optional[int]:
    """Lock the version for this process (None when sh/run.py holds it for us); ConfigError when taken."""
    if inherited_lock(paths):
        return None
    fd = try_lock(paths.lock_file)
    if fd is None:
        raise ConfigError(f"{paths.run_dir} is being trained by another process (it holds {paths.lock_file.name})")
    return fd


def clear_results(paths: RunPaths, resuming: bool, overwrite: bool) -> None:
    """Make sure a new fit does not mix with an earlier run's results in ``paths.run_dir``.

    Resuming continues them; ``overwrite`` (implied for the scratch folder of debug runs) removes them
    first; otherwise ConfigError, and nothing else is touched. Temporaries a killed write left go first.
    """
    remove_half_written(paths.run_dir)
    existing = paths.result_entries()
    if not existing or resuming:
        return
    if not (overwrite or paths.is_scratch):
        names = ", ".join(entry.name for entry in existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise ConfigError(f"{paths.run_dir} already holds a run's results ({names}); continue it with "
                          "--ckpt_path last, or replace it with --run.overwrite true")
    for entry in existing:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


# ----------------------------------------------------------------------------- records

def now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def earlier_attempt(manifest: dict) -> dict:
    """An earlier attempt of a resumed fit, with the code it ran; one still "running" was killed (its lock is ours
    now)."""
    attempt = {key: manifest.get(key) for key in ("start_time", "end_time", "duration_s", "status", "exit_status",
                                                  "git")}
    if attempt["status"] == "running":
        attempt["status"] = "killed"
    return attempt


def record(paths: RunPaths, section: str, values: dict, key: str = None, forget=()) -> dict:
    """Set ``metrics.json[section]`` (or ``[section][key]``) to ``values`` and drop the sections named in
    ``forget`` (scores that no longer hold), written atomically; return the record."""
    metrics = read_json(paths.metrics_file, default={})
    metrics.update({"experiment": paths.experiment, "version": paths.version})
    for stale in forget:
        metrics.pop(stale, None)
    if key is None:
        metrics[section] = values
    else:
        metrics.setdefault(section, {})[key] = values
    write_json_atomic(paths.metrics_file, metrics)
    return metrics


def run_status(paths: RunPaths, locked_by_us: bool = False) -> str:
    """new | running | killed | finished | pruned | failed | interrupted | unknown, from the run folder.

    A run holds its version's lock while it trains (main.py, or sh/run.py on its behalf), so
    ``running`` in manifest.json with the lock free means the run was killed. A run.log without
    a manifest is a run that failed before training started (a config error). Pass ``locked_by_us``
    when the caller holds the lock itself.
    """
    if not locked_by_us and lock_is_held(paths.lock_file):
        return "running"  # whatever an earlier run's manifest says: a --rerun may be replacing it
    status = read_json(paths.manifest_file, default={}).get("status")
    if status is None:
        status = (read_json(paths.metrics_file, default={}).get("fit") or {}).get("status")
    if status is None:
        if paths.result_entries():
            return "unknown"
        return "failed" if paths.log_file.is_file() else "new"
    return "killed" if status == "running" else str(status)


def run_summary(paths: Optional[RunPaths]) -> dict:
    """Duration (all attempts), monitored metric, best score, epochs, test metrics and cost (GPU-hours: GPUs x
    hours, 0 on a CPU; peak memory; the last epoch's samples/s when the throughput switch measured it) of a run
    folder (None where absent, and for no folder at all)."""
    manifest = read_json(paths.manifest_file, default={}) if paths else {}
    metrics = read_json(paths.metrics_file, default={}) if paths else {}
    fit = metrics.get("fit") or {}
    rates = [number(row.get("train/samples_per_sec")) for row in (read_csv(paths.history_file) if paths else [])]
    rates = [rate for rate in rates if rate is not None]
    attempts = [manifest, *manifest.get("earlier_attempts", [])] if manifest else []
    durations = [a["duration_s"] for a in attempts if isinstance(a.get("duration_s"), (int, float))]
    duration = sum(durations) if durations else fit.get("duration_s")
    gpus = manifest.get("num_devices") if manifest.get("accelerator") == "cuda" else 0
    known = isinstance(duration, (int, float)) and "accelerator" in manifest and isinstance(gpus, int)
    return {
        "duration_s": duration,
        "gpu_hours": gpus * duration / 3600 if known else None,
        "monitor": fit.get("monitor"),
        "mode": fit.get("mode"),
        "best_score": fit.get("best_score"),
        "epochs": fit.get("epochs"),
        "test": metrics.get("test") or {},
        "peak_memory_mb": manifest.get("peak_memory_mb"),
        "samples_per_sec": rates[-1] if rates else None,
    }


# ----------------------------------------------------------------------------- checkpoints

LIGHTNING_RESUME_NAMES = ("hpc",)  # fit --ckpt_path values Lightning resolves itself (SLURM's requeue checkpoint)


def best_checkpoint(paths: RunPaths) -> Path:
    """The best checkpoint recorded by fit; looked up in checkpoints/ too when the project has moved."""
    recorded = (read_json(paths.metrics_file, default={}).get("fit") or {}).get("best_model_path")
    if not recorded:
        raise ConfigError(f"--ckpt_path best: {paths.metrics_file} records no best checkpoint; "
                          "train this version first")
    for candidate in (project_path(recorded), paths.checkpoint_dir / Path(recorded).name):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"--ckpt_path best: the recorded checkpoint {recorded} does not exist")


def resolve_checkpoint(ckpt_path: Optional[str], paths: RunPaths, subcommand: str) -> Optional[str]:
    """Turn ``best``/``last``/a path into an existing checkpoint file, before anything is written.

    validate / test / predict need one (the model would be untrained). fit resumes from one; with
    ``last`` and no ``last.ckpt`` yet, it starts from the beginning (None). A relative path is taken
    from the current folder, else from the project.
    """
    if ckpt_path is None:
        if subcommand == "fit":
            return None
        raise ConfigError(f"{subcommand} needs --ckpt_path: best or last (of run {paths.run_dir}) or a checkpoint file")
    if subcommand == "fit" and ckpt_path in LIGHTNING_RESUME_NAMES:
        path = requeue_checkpoint(paths)  # Lightning picks the same file and loads it; it is checked here first
    elif ckpt_path == "best":
        path = best_checkpoint(paths)
    else:
        path = paths.last_checkpoint if ckpt_path == "last" else user_path(ckpt_path)
    if path.is_dir():
        raise ConfigError(f"--ckpt_path {ckpt_path}: {path} is a folder; name a checkpoint file in it")
    if not path.is_file():
        if subcommand == "fit" and ckpt_path == "last":
            print(f"--ckpt_path last: {path} does not exist yet; training starts from the beginning", file=sys.stderr)
            return None
        raise ConfigError(f"--ckpt_path {ckpt_path}: checkpoint {path} does not exist")
    try:
        check_checkpoint(path)
    except ConfigError as error:
        resuming = subcommand == "fit" and ckpt_path in ("last", *LIGHTNING_RESUME_NAMES)
        other = newest_readable_checkpoint(paths, but=path) if resuming else None
        instead = (f"; the newest readable checkpoint of this run is {other}: resume from it with --ckpt_path "
                   f"{other}, or start over with --run.overwrite true" if other else
                   f"; {paths.run_dir} holds no other readable checkpoint: start over with --run.overwrite true"
                   if resuming else "")
        named = f"--ckpt_path {ckpt_path}: " if ckpt_path in ("best", "last", *LIGHTNING_RESUME_NAMES) else ""
        raise ConfigError(f"{named}{error}{instead}") from None
    return ckpt_path if ckpt_path in LIGHTNING_RESUME_NAMES else str(path)


def requeue_checkpoint(paths: RunPaths) -> Path:
    """The checkpoint ``--ckpt_path hpc`` resumes from: the highest-numbered ``hpc_ckpt_<n>.ckpt`` of the run folder,
    where runtime/slurm_requeue.py saves one when SLURM warns of preemption or the time limit."""
    saved = {int(path.stem.rsplit("_", 1)[1]): path for path in paths.run_dir.glob("hpc_ckpt_*.ckpt")
             if path.stem.rsplit("_", 1)[1].isdigit()}
    if not saved:
        raise ConfigError(f"--ckpt_path hpc: {paths.run_dir} holds no SLURM requeue checkpoint (hpc_ckpt_<n>.ckpt); "
                          "resume from another with --ckpt_path last")
    return saved[max(saved)]


def newest_readable_checkpoint(paths: RunPaths, but: Path) -> Optional[Path]:
    """The most recently written checkpoint of the run, other than ``but``, that passes ``check_checkpoint``."""
    candidates = [*paths.checkpoint_dir.glob("*.ckpt"), *paths.run_dir.glob("hpc_ckpt_*.ckpt")]
    for candidate in sorted(candidates, key=lambda path: path.stat().st_mtime, reverse=True):
        try:
            if candidate != but:
                return check_checkpoint(candidate)
        except ConfigError:
            continue
    return None


def newest_checkpoint(paths: RunPaths) -> Optional[tuple[str, Path]]:
    """``("last" | "hpc", file)`` of the newest checkpoint a killed or preempted run left, or None.

    ``hpc`` is Lightning's SLURM requeue checkpoint (``hpc_ckpt_<n>.ckpt`` in the run folder), which
    ``--ckpt_path hpc`` resumes from; ``last`` is ``checkpoints/last.ckpt``.
    """
    candidates = {path: "hpc" for path in paths.run_dir.glob("hpc_ckpt_*.ckpt")}
    if paths.last_checkpoint.is_file():
        candidates[paths.last_checkpoint] = "last"
    if not candidates:
        return None
    newest = max(candidates, key=lambda path: path.stat().st_mtime)
    return candidates[newest], newest


# ----------------------------------------------------------------------------- what writes into the folder

def class_name(component) -> str:
    """The class name of a parsed ``class_path`` / ``init_args`` entry (a logger, a callback)."""
    return str(getattr(component, "class_path", "")).rsplit(".", 1)[-1]


def logger_configs(trainer_config) -> list:
    """The logger entries (class_path and init_args) of a parsed trainer config."""
    loggers = trainer_config.logger
    return [logger for logger in (loggers if isinstance(loggers, list) else [loggers]) if hasattr(logger, "init_args")]


def route_outputs(trainer_config, paths: RunPaths) -> None:
    """Point the trainer's root folder, logger(s), checkpoint callbacks and profiler files at the run's folder,
    so the logger, the checkpoints, the saved config and metrics.json agree for every logger choice."""
    trainer_config.default_root_dir = str(paths.run_dir)
    for logger in logger_configs(trainer_config):
        args, name = logger.init_args, class_name(logger)
        if name in ("TensorBoardLogger", "CSVLogger"):
            args.save_dir, args.name, args.version = str(paths.res_dir), paths.experiment, paths.version
        elif name == "WandbLogger":
            args.save_dir, args.name = str(paths.run_dir), f"{paths.experiment}/{paths.version}"
        elif name == "MLFlowLogger":
            args.experiment_name, args.run_name = paths.experiment, paths.version
            server = os.environ.get("MLFLOW_TRACKING_URI")  # e.g. from .env: the team's server keeps the runs
            args.tracking_uri = server or f"sqlite:///{paths.mlflow_store}"
            if not server:
                args.artifact_location = (paths.res_dir / "mlartifacts" / paths.experiment).as_uri()
    for callback in trainer_config.callbacks or []:
        if class_name(callback) in ("ModelCheckpoint", "LatestCheckpoint"):
            callback.init_args.dirpath = str(paths.checkpoint_dir)
    profiler = trainer_config.profiler
    if hasattr(profiler, "init_args") and profiler.init_args.get("dirpath") is None:
        profiler.init_args.dirpath = str(paths.run_dir)


class StoresMadeWhileBuilding:
    """What loggers write as soon as they are built (MLflow creates its database, and res/ for it), so a run
    refused a moment later can take it back: ``with StoresMadeWhileBuilding(paths): ...build...``."""

    def __init__(self, paths: RunPaths):
        self.new = [path for path in (paths.mlflow_store, paths.res_dir) if not path.exists()]

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if error is None:
            return
        for path in self.new:  # the database, then its folder when that is empty
            if path.is_file():
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


# Resumes, and a test or predict of a trained version, continue the version's logger runs. TensorBoard and
# CSV write into the version's folder; MLflow and W&B keep runs by id, recorded in manifest.json
# (``logger_runs``) when a fit starts and given back to the loggers before they are built.
RUN_ID_ARGUMENTS = {"MLFlowLogger": "run_id", "WandbLogger": "id"}  # the logger's __init__ argument of its run id


def continue_logger_runs(trainer_config, paths: RunPaths) -> None:
    """Give each logger config the run id the version's manifest recorded for its class."""
    recorded = read_json(paths.manifest_file, default={}).get("logger_runs") or {}
    for logger in logger_configs(trainer_config):
        name = class_name(logger)
        if name in RUN_ID_ARGUMENTS and recorded.get(name):
            setattr(logger.init_args, RUN_ID_ARGUMENTS[name], recorded[name])


def logger_run_ids(loggers) -> dict:
    """``{logger class: run id}`` of the loggers that keep runs by id (starting their runs if needed)."""
    ids = {}
    for logger in loggers:
        name = type(logger).__name__
        if name == "MLFlowLogger":
            ids[name] = logger.run_id
        elif name == "WandbLogger":
            ids[name] = getattr(logger.experiment, "id", None)  # not on ranks > 0 (a stand-in experiment)
    return {name: run_id for name, run_id in ids.items() if run_id}


def retire_logger_runs(loggers, run_ids: dict) -> None:
    """``--run.overwrite``: the replaced run's MLflow run is deleted with its folder (MLflow keeps it as deleted)."""
    for logger in loggers:
        old = run_ids.get(type(logger).__name__)
        if type(logger).__name__ == "MLFlowLogger" and old and old != logger.run_id:
            logger.experiment.delete_run(old)
