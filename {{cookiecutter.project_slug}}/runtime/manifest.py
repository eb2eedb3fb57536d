"""A fit's lifecycle in its run folder: the guard against overwriting results, and manifest.json.

manifest.json says how the run was made (command line, merged config, seed, git commit, software,
host, devices) and how it ended: ``status`` is ``running`` from the start, then ``finished``,
``failed`` or ``interrupted`` (also when an exception ends it). Every write is atomic.
"""
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

from .checks import ConfigError
from .files import read_json, write_json_atomic
from .outputs import RunPaths


def claim_run_folder(paths: RunPaths, resuming: bool, overwrite: bool) -> None:
    """Make sure a new fit does not mix with an earlier run's results in ``paths.run_dir``.

    Resuming (``--ckpt_path``) continues them; ``overwrite`` removes them first; otherwise
    ConfigError, and nothing is touched.
    """
    existing = paths.result_entries()
    if not existing or resuming:
        return
    if not overwrite:
        names = ", ".join(entry.name for entry in existing[:4]) + (", ..." if len(existing) > 4 else "")
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


class RunManifest:
    """manifest.json of one fit. Only the process that writes results (rank 0) passes ``enabled``."""

    def __init__(self, paths: RunPaths, command: list, config: dict, seed, project_root, resumed_from=None,
                 enabled: bool = True):
        self.paths, self.enabled, self.started = paths, enabled, time.time()
        if not enabled:
            return
        earlier = read_json(paths.manifest_file, default=None) if resumed_from else None
        self.data = {
            "experiment": paths.experiment,
            "version": paths.version,
            "status": "running",
            "exit_status": None,
            "error": None,
            "command": command,
            "cwd": os.getcwd(),
            "start_time": _now(),
            "end_time": None,
            "duration_s": None,
            "resumed_from": resumed_from,
            "earlier_attempts": ([*earlier.get("earlier_attempts", []), _attempt(earlier)] if earlier else []),
            "seed": seed,
            "git": git_state(project_root),
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
            "config": config,
        }
        write_json_atomic(paths.manifest_file, self.data)

    def finish(self, status: str, exit_status: int = 0, error: Optional[str] = None) -> None:
        if not self.enabled:
            return
        self.data.update(status=status, exit_status=exit_status, error=error, end_time=_now(),
                         duration_s=round(time.time() - self.started, 3))
        write_json_atomic(self.paths.manifest_file, self.data)

    @contextmanager
    def watching(self):
        """Record how the block ended if it raises (failed, or interrupted by Ctrl-C/SIGTERM), then re-raise."""
        try:
            yield
        except BaseException as error:
            status, code = _ending(error)
            self.finish(status, code, f"{type(error).__name__}: {error}"[:1000])
            raise


def _attempt(manifest: dict) -> dict:
    return {key: manifest.get(key) for key in ("start_time", "end_time", "duration_s", "status", "exit_status")}


def command_line(main_file, args) -> list:
    """The command that started this process, with ``args`` when main() was called from Python."""
    given = args if isinstance(args, (list, tuple)) else sys.argv[1:]
    return [sys.executable, str(main_file), *map(str, given)]
