"""A resumed fit, and a test or predict of a trained version, continue the logger runs of that version.

TensorBoard and CSV write into the version's folder, so they continue by themselves, except that
Lightning's CSV writer deletes an existing ``metrics.csv``: its rows from before the checkpoint are
put back (KeepCSVRows). MLflow and Weights & Biases keep runs by id: the ids are recorded in manifest.json
(``logger_runs``) when a fit starts and given back to the loggers before they are built.
"""
import csv
from pathlib import Path
from typing import Optional

import torch
from pytorch_lightning import Callback

from .files import atomic_file

RUN_ID_ARGUMENTS = {"MLFlowLogger": "run_id", "WandbLogger": "id"}  # the logger's __init__ argument of its run id


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


def continue_logger_runs(logger_configs, run_ids: dict) -> None:
    """Give each logger config the run id recorded for its class, so it logs into that run again."""
    for logger in logger_configs:
        name = str(getattr(logger, "class_path", "")).rsplit(".", 1)[-1]
        if name in RUN_ID_ARGUMENTS and run_ids.get(name):
            setattr(logger.init_args, RUN_ID_ARGUMENTS[name], run_ids[name])


def retire_logger_runs(loggers, run_ids: dict) -> None:
    """``--run.overwrite``: the replaced run's MLflow run is deleted with its folder (MLflow keeps it as deleted)."""
    for logger in loggers:
        old = run_ids.get(type(logger).__name__)
        if type(logger).__name__ == "MLFlowLogger" and old and old != logger.run_id:
            logger.experiment.delete_run(old)


def checkpoint_step(checkpoint_path) -> Optional[int]:
    """The global step a checkpoint resumes at, read without loading its tensors (None if unreadable)."""
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", mmap=True, weights_only=False)
    except (OSError, RuntimeError, ValueError):
        return None
    return checkpoint.get("global_step")


class KeepCSVRows(Callback):
    """A resumed fit's CSVLogger keeps the rows of metrics.csv logged before the checkpoint's step.

    Lightning's CSV writer deletes an existing metrics.csv when the fit creates it (just before the
    ``setup`` hooks); the rows are read when this callback is built and written back in ``setup``.
    The rows from the checkpoint's step on are left out: the resumed fit logs them again.
    """

    def __init__(self, loggers, checkpoint_path):
        self.saved = {}
        step = checkpoint_step(checkpoint_path)
        for logger in loggers:
            path = Path(logger.log_dir) / "metrics.csv" if type(logger).__name__ == "CSVLogger" else None
            if step is None or path is None or not path.is_file():
                continue
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                rows = [row for row in reader if row.get("step", "").isdigit() and int(row["step"]) < step]
                self.saved[logger] = (sorted(reader.fieldnames or []), rows)

    def setup(self, trainer, pl_module, stage: str) -> None:
        for logger, (columns, rows) in self.saved.items():
            if rows and trainer.is_global_zero:
                with atomic_file(Path(logger.log_dir) / "metrics.csv") as f:
                    out = csv.DictWriter(f, fieldnames=columns)
                    out.writeheader()
                    out.writerows(rows)
                logger.experiment.metrics_keys = columns  # the writer appends its rows under this header
        self.saved = {}
