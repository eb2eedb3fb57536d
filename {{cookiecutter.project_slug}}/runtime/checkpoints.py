"""Checkpoint files: written atomically, and ``--ckpt_path best|last|file`` found before a run starts.

A fresh process has no in-memory "best" checkpoint, so main.py resolves the names from what fit left
on disk: ``best`` is ``metrics.json``'s ``fit.best_model_path``, ``last`` is ``checkpoints/last.ckpt``.
"""
import sys
from datetime import timedelta
from pathlib import Path
from typing import Optional

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint

from .checks import ConfigError
from .files import atomic_file, read_json
from .outputs import RunPaths
from .paths import project_path, user_path

LIGHTNING_RESUME_NAMES = ("hpc",)  # fit --ckpt_path values Lightning resolves itself (SLURM's requeue checkpoint)


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
        return ckpt_path
    if ckpt_path == "best":
        return str(best_checkpoint(paths))
    path = paths.last_checkpoint if ckpt_path == "last" else user_path(ckpt_path)
    if not path.is_file():
        if subcommand == "fit" and ckpt_path == "last":
            print(f"--ckpt_path last: {path} does not exist yet; training starts from the beginning", file=sys.stderr)
            return None
        raise ConfigError(f"--ckpt_path {ckpt_path}: checkpoint {path} does not exist")
    return str(path)


class LatestCheckpoint(ModelCheckpoint):
    """``last.ckpt`` only: at the end of every epoch, and every ``train_time_interval`` of training.

    Lightning 2.6's ``save_last`` rewrites last.ckpt only in an epoch where a top-k checkpoint was
    saved, so after the best epoch a killed run would resume from there. This callback keeps the one
    file a resumed fit (``--ckpt_path last``) needs always current; best checkpoints stay with the
    monitoring ModelCheckpoint.
    """

    def __init__(self, dirpath: Optional[str] = None, train_time_interval: Optional[timedelta] = None):
        super().__init__(dirpath=dirpath, save_top_k=0, save_last=True, train_time_interval=train_time_interval,
                         enable_version_counter=False)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._should_save_on_train_epoch_end(trainer):
            self._save_latest(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_latest(trainer)

    def _save_latest(self, trainer) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


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
