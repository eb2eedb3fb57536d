"""Checkpoint files: written atomically, and ``--ckpt_path best|last`` found in the run folder.

A fresh process has no in-memory "best" checkpoint, so main.py resolves the names from what fit left
on disk: ``best`` is ``metrics.json``'s ``fit.best_model_path``, ``last`` is ``checkpoints/last.ckpt``.
"""
from pathlib import Path
from typing import Optional

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from data._common import project_path

from .checks import ConfigError
from .files import atomic_file, read_json
from .outputs import RunPaths


def best_checkpoint(paths: RunPaths) -> Path:
    """The best checkpoint recorded by fit; looked up in checkpoints/ too when the project has moved."""
    recorded = (read_json(paths.metrics_file, default={}).get("fit") or {}).get("best_model_path")
    if not recorded:
        raise ConfigError(
            f"--ckpt_path best: {paths.metrics_file} records no best checkpoint; train this version first"
        )
    for candidate in (project_path(recorded), paths.checkpoint_dir / Path(recorded).name):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"--ckpt_path best: the recorded checkpoint {recorded} does not exist")


def resolve_checkpoint(ckpt_path: Optional[str], paths: RunPaths, subcommand: str) -> str:
    """Turn ``best``/``last``/a path into an existing checkpoint file; without one the model would be untrained."""
    if ckpt_path is None:
        raise ConfigError(f"{subcommand} needs --ckpt_path: best or last (of run {paths.run_dir}) or a checkpoint file")
    if ckpt_path == "best":
        return str(best_checkpoint(paths))
    path = paths.checkpoint_dir / "last.ckpt" if ckpt_path == "last" else project_path(ckpt_path)
    if not path.is_file():
        raise ConfigError(f"--ckpt_path {ckpt_path}: checkpoint {path} does not exist")
    return str(path)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint beside its target, then renames it: a run killed mid-write keeps its old last.ckpt.

    Lightning's own writer stages the file in the system temp folder and moves it, which is a copy
    (not atomic) when res/ lives on another filesystem, as it often does on clusters.
    """

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_file(path, "wb") as f:
            torch.save(checkpoint, f)


def use_atomic_checkpoints(trainer) -> None:
    """Swap the strategy's default checkpoint writer for AtomicCheckpointIO; custom or sharded writers stay."""
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = AtomicCheckpointIO()
