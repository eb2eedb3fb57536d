"""A fit's lifecycle in its run folder: its lock, the guard against overwriting results, manifest.json.

While a fit runs, an exclusive flock on ``<run dir>/.lock`` is held (by sh/run.py on the fit's
behalf, or by main.py itself when started directly), so one version never trains twice at once
and a "running" manifest whose lock is free belongs to a killed run.

manifest.json says how the run was made (command line, merged config, seed, git commit, software,
host, devices, the loggers' run ids) and how it ended: ``status`` is ``running`` from the start, then
``finished``, ``failed`` or ``interrupted`` (also when an exception ends it). It is first written
once the data is set up, so a fit that cannot even load its data leaves nothing behind. Every
write is atomic.
"""
import fcntl
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Optional

import pytorch_lightning
import torch
from pytorch_lightning import Callback

from .checks import ConfigError
from .files import read_json, write_json_atomic
from .outputs import LOCK_FD_ENV, RunPaths
from .resume import logger_run_ids, retire_logger_runs


def hold_lock(paths: RunPaths) -> Optional[int]:
    """Lock the version for this process; None when sh/run.py passed its lock down. ConfigError when taken."""
    inherited = os.environ.get(LOCK_FD_ENV, "")
    if inherited.isdigit() and paths.lock_file.exists():
        try:
            if os.path.samestat(os.fstat(int(inherited)), os.stat(paths.lock_file)):
                return None
        except OSError:
            pass
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(
            f"{paths.run_dir} is being trained by another process (it holds {paths.lock_file.name})") from None
    return fd


def claim_run_folder(paths: RunPaths, resuming: bool, overwrite: bool) -> None:
    """Make sure a new fit does not mix with an earlier run's results in ``paths.run_dir``.

    Resuming (``--ckpt_path``) continues them; ``overwrite`` (implied for the scratch folder of debug
    runs) removes them first; otherwise ConfigError, and nothing is touched.
    """
    existing = paths.result_entries()
    if not existing or resuming:
        return
    if not (overwrite or paths.is_scratch):
        names = ", ".join(entry.name for entry in existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise ConfigError(
            f"{paths.run_dir} already holds a run's results ({names}); continue it with --ckpt_path last, "
            "or replace it with --run.overwrite true"
        )
    for entry in existing:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def git_state(folder) -> Optional[dict]:
    """``{"commit", "dirty"}`` of the git checkout holding ``folder``; None outside git (or without git)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=30, check=True).stdout

    try:
        return {"commit": git("rev-parse", "HEAD").strip(), "dirty": bool(git("status", "--porcelain").strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def device_names() -> list:
    if torch.cuda.is_available():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return [f"cpu: {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"]


def _ending(error: BaseException) -> tuple:
    """(status, exit status) of a run ended by ``error``; Lightning exits on Ctrl-C and SIGTERM."""
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        code = getattr(error, "code", None)
        return "interrupted", code if isinstance(code, int) else 1
    return "failed", 1


def _attempt(manifest: dict) -> dict:
    """An earlier attempt of a resumed fit; one still "running" was killed (its lock is ours now)."""
    attempt = {key: manifest.get(key) for key in ("start_time", "end_time", "duration_s", "status", "exit_status")}
    if attempt["status"] == "running":
        attempt["status"] = "killed"
    return attempt


class RunManifest(Callback):
    """One fit in its run folder: locks it and guards earlier results when built (before any process of
    the fit starts), writes manifest.json when the fit's data is set up, and again at ``finish``.

    Only the process that writes results (rank 0) passes ``enabled``; the others do nothing.
    """

    def __init__(self, paths: RunPaths, *, command: list, config: dict, seed, project_root,
                 resumed_from=None, overwrite: bool = False, enabled: bool = True):
        self.paths, self.enabled, self.started, self._lock_fd = paths, enabled, time.monotonic(), None
        self.command, self.config, self.seed, self.project_root = command, config, seed, project_root
        self.resumed_from, self.data = resumed_from, None
        if not enabled:
            return
        self._lock_fd = hold_lock(paths)
        try:
            self.earlier = read_json(paths.manifest_file, default=None) or {}
            claim_run_folder(paths, resuming=resumed_from is not None, overwrite=overwrite)
        except BaseException:
            self._release()
            raise

    def setup(self, trainer, pl_module, stage: str) -> None:
        """The data is there (prepare_data and setup ran): the run starts, and its manifest is written."""
        if not self.enabled or stage != "fit" or self.data is not None:
            return
        run_ids = logger_run_ids(trainer.loggers)
        if not self.resumed_from:
            retire_logger_runs(trainer.loggers, self.earlier.get("logger_runs") or {})
        earlier = self.earlier if self.resumed_from else {}
        self.data = {
            "experiment": self.paths.experiment,
            "version": self.paths.version,
            "status": "running",
            "exit_status": None,
            "error": None,
            "command": self.command,
            "cwd": os.getcwd(),
            "start_time": _now(),
            "end_time": None,
            "duration_s": None,
            "resumed_from": self.resumed_from,
            "earlier_attempts": [*earlier.get("earlier_attempts", []), _attempt(earlier)] if earlier else [],
            "seed": self.seed,
            "git": git_state(self.project_root),
            "software": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "pytorch_lightning": pytorch_lightning.__version__,
                "cuda": torch.version.cuda,
            },
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "platform": platform.platform(),
            "devices": device_names(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "logger_runs": run_ids,
            "config": self.config,
        }
        write_json_atomic(self.paths.manifest_file, self.data)

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def finish(self, status: str, exit_status: int = 0, error: Optional[str] = None) -> None:
        """Record how the fit ended (when it got as far as starting) and unlock the version."""
        if not self.enabled:
            return
        try:
            if self.data is not None:
                self.data.update(status=status, exit_status=exit_status, error=error, end_time=_now(),
                                 duration_s=round(time.monotonic() - self.started, 3))
                write_json_atomic(self.paths.manifest_file, self.data)
        finally:
            self._release()

    @contextmanager
    def watching(self):
        """Record how the block ended if it raises (failed, or interrupted by Ctrl-C/SIGTERM), then re-raise."""
        try:
            yield
        except BaseException as error:
            status, code = _ending(error)
            message = f"{type(error).__name__}: {error}" if status == "failed" else f"stopped ({type(error).__name__})"
            self.finish(status, code, message[:1000])
            raise


def command_line(main_file, args) -> list:
    """The command that started this process, with ``args`` when main() was called from Python."""
    given = args if isinstance(args, (list, tuple)) else sys.argv[1:]
    return [sys.executable, str(main_file), *map(str, given)]
