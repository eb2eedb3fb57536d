"""What a run leaves behind besides logs and checkpoints: config.yaml, metrics.json and history.csv."""
import csv
import io
import time
from pathlib import Path

from pytorch_lightning import Callback
from pytorch_lightning.cli import SaveConfigCallback

from .files import read_csv, read_json, write_json_atomic, write_text_atomic
from .outputs import RunPaths


class SaveRunConfig(SaveConfigCallback):
    """Save the merged config as ``<run_dir>/config.yaml`` (atomically) whatever the logger (or none)."""

    def __init__(self, *args, **kwargs):
        kwargs["save_to_log_dir"] = False
        super().__init__(*args, **kwargs)

    def save_config(self, trainer, pl_module, stage: str) -> None:
        if stage != "fit":
            return  # test / validate / predict of a trained version must not overwrite the config it was trained with
        path = RunPaths.from_config(self.config.run).run_dir / self.config_filename
        write_text_atomic(path, self.parser.dump(self.config, skip_none=False))


def _scalars(metrics: dict, prefix: str) -> dict:
    return {k: float(v) for k, v in metrics.items() if k.startswith(prefix) and getattr(v, "numel", lambda: 1)() == 1}


def fit_ending(trainer) -> str:
    """How a fit ended: ``interrupted`` (Ctrl-C, SIGTERM), a callback's own ``run_status`` (optuna's ``pruned``),
    else ``finished``."""
    if trainer.interrupted:
        return "interrupted"
    return next((c.run_status for c in trainer.callbacks if getattr(c, "run_status", None)), "finished")


def fit_summary(trainer, started: float) -> dict:
    """Best checkpoint and score, last validation metrics, epochs and duration (since ``started``, a
    ``time.monotonic()`` reading) of a finished fit."""
    checkpoint = trainer.checkpoint_callback
    best_score = getattr(checkpoint, "best_model_score", None)
    return {
        "status": fit_ending(trainer),
        "monitor": getattr(checkpoint, "monitor", None),
        "best_score": float(best_score) if best_score is not None else None,
        "best_model_path": getattr(checkpoint, "best_model_path", None) or None,
        "last_model_path": next((c.last_model_path for c in trainer.checkpoint_callbacks if c.last_model_path), None),
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "duration_s": round(time.monotonic() - started, 3),
        "val": _scalars(trainer.callback_metrics, "val/"),
        "train": _scalars(trainer.callback_metrics, "train/"),
    }


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


class HistoryCSV(Callback):
    """history.csv: one row per validation (epoch, step, val/* and train/* epoch metrics), whatever the logger.

    A row is written when validation ends, before any checkpoint of that moment (main.py puts this
    callback ahead of ModelCheckpoint), then completed with the epoch's train metrics. Rows from
    the step a resumed fit restarts at onwards are replaced, so the history continues, never
    repeats, and is never behind the checkpoint a run resumes from. Each write is atomic.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._row = None

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and trainer.is_global_zero:
            self._row = {"epoch": trainer.current_epoch, "step": trainer.global_step,
                         **_scalars(trainer.callback_metrics, "val/")}
            self._write()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._row is not None:
            train = _scalars(trainer.callback_metrics, "train/")
            self._row.update({k: v for k, v in train.items() if not k.endswith("_step")})
            self._write()
            self._row = None

    def _write(self) -> None:
        rows = [old for old in read_csv(self.path) if int(old["step"]) < self._row["step"]] + [self._row]
        columns = ["epoch", "step", *sorted({key for row in rows for key in row} - {"epoch", "step"})]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(self.path, text.getvalue())
