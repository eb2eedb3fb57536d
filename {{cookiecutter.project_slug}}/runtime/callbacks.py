"""Lightning callbacks behind main.py and the config presets: what a run records, how its checkpoints are
written, the contract checks made while it trains, and the debug helpers Lightning lacks in this form.
"""
import csv
import io
import os
import platform
import resource
import socket
import sys
import time
import traceback
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Optional

import pytorch_lightning
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.throughput import measure_flops
from pytorch_lightning import Callback
from pytorch_lightning.callbacks import (
    BasePredictionWriter,
    BatchSizeFinder,
    EarlyStopping,
    LearningRateFinder,
    ModelCheckpoint,
    StochasticWeightAveraging,
    ThroughputMonitor,
    WeightAveraging,
)
from pytorch_lightning.utilities import grad_norm
from pytorch_lightning.utilities.rank_zero import rank_zero_warn

from contract import ConfigError, check_monitor_logged, prediction_columns

from .code_state import ENVIRONMENT_FILE, installed_distributions, requirement_versions, save_code_state
from .run_folder import (
    RunPaths,
    atomic_file,
    clear_results,
    earlier_attempt,
    hold_lock,
    logger_run_ids,
    now,
    read_csv,
    read_json,
    retire_logger_runs,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)


def scalars(metrics: dict, prefix: str) -> dict:
    """The single-number metrics of ``metrics`` whose names start with ``prefix``, as floats."""
    return {k: float(v) for k, v in metrics.items() if k.startswith(prefix) and getattr(v, "numel", lambda: 1)() == 1}


# ----------------------------------------------------------------------------- the run's records

def device_names() -> list:
    if torch.cuda.is_available():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return [f"cpu: {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"]


def peak_memory() -> dict:
    """The process's peak memory: CUDA's allocations when it trained on a GPU, else its resident set (RSS)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return {"peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1), "peak_memory_of": "cuda"}
    return {"peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_memory_of": "rss"}


def software(project_root: Path) -> dict:
    """Python, torch, Lightning, torchmetrics and CUDA versions, and the installed version of each package the
    project's requirements.txt names (None: not installed)."""
    import torchmetrics

    return {"python": platform.python_version(), "torch": torch.__version__,
            "pytorch_lightning": pytorch_lightning.__version__, "torchmetrics": torchmetrics.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
            "requirements": requirement_versions(Path(project_root) / "requirements.txt")}


def write_bytes_atomic(path, data: bytes) -> None:
    with atomic_file(path, "wb") as f:
        f.write(data)


LOGGER_PACKAGES = ("tensorboard", "tensorboardX", "mlflow", "wandb")


def failing_logger(error: BaseException) -> Optional[str]:
    """The logger whose code raised ``error`` (a logger package, or Lightning's loggers), else None: its own writes,
    some made by a background thread, fail where no result file of the project is named."""
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        parts = Path(frame.filename).parts
        if "loggers" in parts and "pytorch_lightning" in parts:
            return Path(frame.filename).stem
        found = next((package for package in LOGGER_PACKAGES if package in parts), None)
        if found:
            return found
    return None


def _ending(error: BaseException) -> tuple:
    """(status, exit status) of a run ended by ``error``; Lightning exits on Ctrl-C and SIGTERM."""
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        code = getattr(error, "code", None)
        return "interrupted", code if isinstance(code, int) else 1
    return "failed", 1


class RunRecorder(Callback):
    """One fit in its run folder: ``config.yaml`` and ``manifest.json``.

    When built (before any process of the fit starts) it locks the version, so one version never trains
    twice at once, and guards earlier results (``--ckpt_path`` continues them, ``--run.overwrite`` replaces
    them). Once the fit's data is set up it writes config.yaml (the merged config) and manifest.json (how
    the run was made: command, config with the linked values, seed, the code state (git commit and the
    uncommitted changes in code.diff, code_state.py), software, host, devices, the loggers' run ids) with
    environment.txt (every installed package); ``finish`` records how it ended: ``finished``, ``failed``,
    ``interrupted`` or a callback's ``run_status`` (optuna's ``pruned``). A fit that cannot load its data
    leaves neither file. Only the process that writes results (rank 0) passes ``enabled``; the others do nothing.
    """

    def __init__(self, paths: RunPaths, *, command: list, config_text: str, config: dict, seed, project_root,
                 resumed_from=None, overwrite: bool = False, enabled: bool = True):
        self.paths, self.enabled, self.started, self._lock_fd = paths, enabled, time.monotonic(), None
        self.command, self.config_text, self.config, self.seed = command, config_text, config, seed
        self.project_root, self.resumed_from, self.data = project_root, resumed_from, None
        if not enabled:
            return
        self._lock_fd = hold_lock(paths)
        try:
            self.earlier = read_json(paths.manifest_file, default={})
            clear_results(paths, resuming=resumed_from is not None, overwrite=overwrite)
        except BaseException:
            self._release()
            raise

    def setup(self, trainer, pl_module, stage: str) -> None:
        if not self.enabled or stage != "fit" or self.data is not None:
            return
        write_text_atomic(self.paths.config_file, self.config_text)
        run_ids = logger_run_ids(trainer.loggers)
        if not self.resumed_from:
            retire_logger_runs(trainer.loggers, self.earlier.get("logger_runs") or {})
        earlier = self.earlier if self.resumed_from else {}
        code = save_code_state(self.project_root, self.paths.run_dir, write_bytes_atomic)
        if code.get("note"):
            print(f"note: {code['note']}", file=sys.stderr)
        write_text_atomic(self.paths.run_dir / ENVIRONMENT_FILE, installed_distributions())
        self.data = {
            "experiment": self.paths.experiment,
            "version": self.paths.version,
            "status": "running",
            "exit_status": None,
            "error": None,
            "command": self.command,
            "cwd": os.getcwd(),
            "start_time": now(),
            "end_time": None,
            "duration_s": None,
            "resumed_from": self.resumed_from,
            "earlier_attempts": [*earlier.get("earlier_attempts", []), earlier_attempt(earlier)] if earlier else [],
            "seed": self.seed,
            "git": code,
            "software": software(self.project_root),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "platform": platform.platform(),
            "devices": device_names(),
            "accelerator": trainer.strategy.root_device.type,  # cuda | cpu | mps: what trained, with how many
            "num_devices": trainer.num_devices * trainer.num_nodes,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "logger_runs": run_ids,
            "config": self.config,
        }
        write_json_atomic(self.paths.manifest_file, self.data)

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def finish(self, status: str, exit_status: int = 0, error: Optional[str] = None, **details) -> None:
        """Record how the fit ended (when it got as far as starting) and unlock the version. A failed fit's record is
        written where space allows: a disk too full for it keeps the manifest of the start, and the first error."""
        if not self.enabled:
            return
        try:
            if self.data is not None:
                self.data.update(status=status, exit_status=exit_status, error=error, end_time=now(),
                                 duration_s=round(time.monotonic() - self.started, 3), **peak_memory(), **details)
                write_json_atomic(self.paths.manifest_file, self.data)
        except OSError:
            if status == "finished":
                raise
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
            logger = failing_logger(error) if status == "failed" else None
            self.finish(status, code, message[:1000], **({"failed_logger": logger} if logger else {}))
            raise

    def summary(self, trainer, monitor: str, mode: str) -> dict:
        """metrics.json's ``fit``: how it ended, best checkpoint and score, last metrics, epochs, duration."""
        checkpoint = trainer.checkpoint_callback
        best_score = getattr(checkpoint, "best_model_score", None)
        ending = "interrupted" if trainer.interrupted else next(
            (c.run_status for c in trainer.callbacks if getattr(c, "run_status", None)), "finished")
        return {
            "status": ending,
            "monitor": monitor,
            "mode": mode,
            "best_score": float(best_score) if best_score is not None else None,
            "best_model_path": getattr(checkpoint, "best_model_path", None) or None,
            "last_model_path": next((c.last_model_path for c in trainer.checkpoint_callbacks if c.last_model_path),
                                    None),
            "epochs": trainer.current_epoch,
            "early_stopping": next((early_stopping_record(callback) for callback in trainer.callbacks
                                    if isinstance(callback, EarlyStopping)), None),
            "global_step": trainer.global_step,
            "duration_s": round(time.monotonic() - self.started, 3),
            "val": scalars(trainer.callback_metrics, "val/"),
            "train": scalars(trainer.callback_metrics, "train/"),
        }


class HistoryCSV(Callback):
    """history.csv: one row per validation (epoch, step, val/* and train/* epoch metrics), whatever the logger.

    A row is written when validation ends, before any checkpoint of that moment (checkpoint callbacks run
    last), then completed with the epoch's train metrics. Rows from the step a resumed fit restarts at
    onwards are replaced, so the history continues, never repeats, and is never behind the checkpoint a
    run resumes from. Each write is atomic.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._row = None

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and trainer.is_global_zero:
            self._row = {"epoch": trainer.current_epoch, "step": trainer.global_step,
                         **scalars(trainer.callback_metrics, "val/")}
            self._write()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._row is not None:
            train = scalars(trainer.callback_metrics, "train/")
            self._row.update({k: v for k, v in train.items() if not k.endswith("_step")})
            self._write()
            self._row = None

    def _write(self) -> None:
        rows = [old for old in read_csv(self.path) if int(old["step"]) < self._row["step"]] + [self._row]
        columns = ["epoch", "step", *sorted({key for row in rows for key in row} - {"epoch", "step"})]
        write_csv_atomic(self.path, columns, rows)


class MonitorCheck(Callback):
    """The research contract's point 2, checked after the first validation (the sanity check included):
    the monitored metric must be among those validation logged."""

    def __init__(self, monitor: str):
        self.monitor, self.checked = monitor, False

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self.checked:
            check_monitor_logged(self.monitor, trainer.callback_metrics)
            self.checked = True


# ----------------------------------------------------------------------------- checkpoints

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


def checkpoint_step(checkpoint_path) -> Optional[int]:
    """The global step a checkpoint resumes at, read without loading its tensors (None if unreadable)."""
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", mmap=True, weights_only=False)
    except (OSError, RuntimeError, ValueError):
        return None
    return checkpoint.get("global_step")


class KeepCSVRows(Callback):
    """The CSVLogger of a resumed fit, or of a later validate or test, keeps the rows metrics.csv holds.

    Lightning's CSV writer deletes an existing metrics.csv when it is created (just before the
    ``setup`` hooks); the rows are read when this callback is built and written back in ``setup``.
    A resumed fit (``checkpoint_path``) leaves out the rows from the checkpoint's step on: it logs them again.
    """

    def __init__(self, loggers, checkpoint_path=None):
        self.saved = {}
        step = checkpoint_step(checkpoint_path) if checkpoint_path else float("inf")
        for logger in loggers:
            path = Path(logger.log_dir) / "metrics.csv" if type(logger).__name__ == "CSVLogger" else None
            if step is None or path is None or not path.is_file():
                continue
            with open(path, newline="") as f:
                line_end = "\r\n" if f.readline().endswith("\r\n") else "\n"  # Lightning's writer: csv's \r\n
                f.seek(0)
                reader = csv.DictReader(f)
                rows = [row for row in reader if row.get("step", "").isdigit() and int(row["step"]) < step]
                self.saved[logger] = (list(reader.fieldnames or []), rows, line_end)

    def setup(self, trainer, pl_module, stage: str) -> None:
        for logger, (columns, rows, line_end) in self.saved.items():
            if rows and trainer.is_global_zero:
                write_csv_atomic(Path(logger.log_dir) / "metrics.csv", columns, rows, line_end)
                logger.experiment.metrics_keys = columns  # the writer appends its rows under this header
        self.saved = {}


# ----------------------------------------------------------------------------- predictions

class PredictionWriter(BasePredictionWriter):
    """``main.py predict`` writes ``predictions.csv``: ``sample_id``, then the columns of ``predict_step``'s
    outputs (the research contract's point 3, checked at the first batch).

    Safe under DDP: every rank appends the rows of its own batches to a part file beside the CSV; after
    the last batch rank 0 merges the parts in input order, keeps one row per sample id (a distributed
    sampler may give a sample to two ranks) and removes the parts. Several nodes need ``res/`` on a
    filesystem they share. Sample ids come from the dataset's ``sample_ids``, else they are the index.
    """

    def __init__(self, path):
        super().__init__(write_interval="batch")
        self.path = Path(path)
        self._part = self._writer = self._columns = None

    def _part_path(self, rank: int) -> Path:
        return self.path.with_name(f".{self.path.stem}.rank{rank}.csv")

    def on_predict_epoch_start(self, trainer, pl_module) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._part = open(self._part_path(trainer.global_rank), "w", newline="")
        self._writer = csv.writer(self._part)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx) -> None:
        loaders = trainer.predict_dataloaders
        dataset = (loaders[dataloader_idx] if isinstance(loaders, (list, tuple)) else loaders).dataset
        sample_ids = getattr(dataset, "sample_ids", None)
        columns = prediction_columns(prediction, len(batch_indices), getattr(trainer.datamodule, "classes", None))
        if self._columns is None:
            self._columns = list(columns)
            self._writer.writerow(["index", "sample_id", *self._columns])
        for row, index in enumerate(batch_indices):
            sample_id = index if sample_ids is None else sample_ids[index]
            self._writer.writerow([index, sample_id, *(columns[name][row] for name in self._columns)])

    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        self._part.close()
        trainer.strategy.barrier("predictions_written")
        if trainer.is_global_zero:
            self._merge(trainer.world_size)
        trainer.strategy.barrier("predictions_merged")

    def _merge(self, world_size: int) -> None:
        header, rows = None, {}
        for rank in range(world_size):
            part = self._part_path(rank)
            with open(part, newline="") as f:
                reader = csv.reader(f)
                for index, sample_id, *values in reader:
                    if index == "index":
                        header = values
                        continue
                    rows.setdefault(sample_id, (int(index), values))
            part.unlink()
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["sample_id", *(header or [])])
        for sample_id, (_, values) in sorted(rows.items(), key=lambda item: item[1][0]):
            writer.writerow([sample_id, *values])
        write_text_atomic(self.path, text.getvalue())


# ----------------------------------------------------------------------------- debug presets (config/debug/)

class GradientNormMonitor(Callback):
    """Log the gradient norm before each optimizer step (before clipping): ``grad_<p>_norm_total``,
    and with ``per_layer`` one ``grad_<p>_norm/<parameter>`` per parameter."""

    def __init__(self, norm_type: float = 2.0, per_layer: bool = False):
        """
        Args:
            norm_type: the p of the p-norm.
            per_layer: also log the norm of every parameter tensor.
        """
        self.norm_type = norm_type
        self.per_layer = per_layer

    def on_fit_start(self, trainer, pl_module) -> None:
        if trainer.logger is None:
            rank_zero_warn("grad_norm: no logger, so the gradient norms are only shown in the progress bar")

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        norms = grad_norm(pl_module, norm_type=self.norm_type)
        if not self.per_layer:
            norms = {key: value for key, value in norms.items() if key.endswith("_total")}
        pl_module.log_dict(norms, on_step=True, on_epoch=False, prog_bar=trainer.logger is None)


class LearningRateFinderReport(LearningRateFinder):
    """Lightning's learning-rate range test at the start of fit, reported rather than applied.

    The learning rate belongs to the config (``optimizer.init_args.lr``), so a run stays reproducible
    from its config.yaml: the curve and the suggestion go to ``<run_dir>/lr_find.json`` and one line is
    printed; training then goes on with the configured learning rate.
    """

    def __init__(self, min_lr: float = 1e-6, max_lr: float = 1.0, num_training_steps: int = 100,
                 mode: str = "exponential", early_stop_threshold: float = 4.0):
        """
        Args:
            min_lr: smallest learning rate tried.
            max_lr: largest learning rate tried.
            num_training_steps: steps of the range test, over as many epochs as they need.
            mode: "exponential" or "linear" increase between the steps.
            early_stop_threshold: stop once the loss exceeds this multiple of the best loss.
        """
        super().__init__(min_lr, max_lr, num_training_steps, mode, early_stop_threshold, update_attr=False)

    def lr_find(self, trainer, pl_module) -> None:
        max_epochs = trainer.fit_loop.max_epochs
        trainer.fit_loop.max_epochs = -1  # the range test runs its num_training_steps, not only max_epochs' batches
        try:
            super().lr_find(trainer, pl_module)
        finally:
            trainer.fit_loop.max_epochs = max_epochs
        if self.optimal_lr is None or not trainer.is_global_zero:
            return
        suggestion = self.optimal_lr.suggestion()
        path = Path(trainer.default_root_dir) / "lr_find.json"
        write_json_atomic(path, {"suggestion": suggestion, **self.optimal_lr.results})
        advice = (f"{suggestion:.3g}; set optimizer.init_args.lr in the version's config" if suggestion
                  else "none (too few steps)")
        print(f"Learning-rate finder: suggested learning rate {advice}; curve in {path}", flush=True)


class BatchSizeSearch(BatchSizeFinder):
    """Lightning's batch-size finder, started from the configured batch size and run once, before fit.

    Lightning's own starts at 2, so with few trials it could end below a size that works; and it
    searches again before the test after fit. This one starts at ``data.init_args.batch_size``,
    trains with the largest size that worked, and writes both to ``<run_dir>/batch_size_find.json``.
    """

    def __init__(self, mode: str = "power", steps_per_trial: int = 3, max_trials: int = 6):
        """
        Args:
            mode: "power" doubles the size each try; "binsearch" then narrows down between the last two.
            steps_per_trial: training steps each size is tried for.
            max_trials: how many larger sizes are tried at most.
        """
        super().__init__(mode=mode, steps_per_trial=steps_per_trial, max_trials=max_trials)

    def on_fit_start(self, trainer, pl_module) -> None:
        configured = trainer.datamodule.batch_size
        self._init_val = configured
        super().on_fit_start(trainer, pl_module)
        if trainer.is_global_zero:
            path = Path(trainer.default_root_dir) / "batch_size_find.json"
            write_json_atomic(path, {"configured": configured, "found": self.optimal_batch_size})
            print(f"Batch-size finder: training with batch size {self.optimal_batch_size} (configured {configured}); "
                  f"sizes in {path}", flush=True)

    def on_validation_start(self, trainer, pl_module) -> None:
        """Searched once, at the start of fit: validation and test use the size found."""

    def on_test_start(self, trainer, pl_module) -> None:
        """Searched once, at the start of fit."""

    def on_predict_start(self, trainer, pl_module) -> None:
        """Searched once, at the start of fit."""


# ----------------------------------------------------------------------------- training switches (config/switches/)

class EarlyStop(EarlyStopping):
    """Lightning's EarlyStopping on ``run.monitor`` (main.py fills ``monitor`` and ``mode``); why and when it stopped
    goes to metrics.json (``fit.early_stopping``)."""

    def __init__(self, monitor: Optional[str] = None, min_delta: float = 0.0, patience: int = 3,
                 mode: Optional[str] = None, check_finite: bool = True, stopping_threshold: Optional[float] = None,
                 divergence_threshold: Optional[float] = None):
        """
        Args:
            monitor: the metric watched (default: run.monitor).
            min_delta: the least change that counts as an improvement.
            patience: validations without improvement before stopping.
            mode: min or max (default: run.mode).
            check_finite: stop when the metric becomes NaN or infinite.
            stopping_threshold: stop as soon as the metric is this good.
            divergence_threshold: stop as soon as the metric is this bad.
        """
        if monitor is None:
            raise ConfigError("EarlyStop has no monitor: main.py gives it run.monitor; pass monitor= when you build it")
        super().__init__(monitor=monitor, min_delta=min_delta, patience=patience, mode=mode or "min",
                         check_finite=check_finite, stopping_threshold=stopping_threshold,
                         divergence_threshold=divergence_threshold)



def early_stopping_record(callback: EarlyStopping) -> dict:
    """Why and when an EarlyStopping callback stopped the fit (``stopped`` false when it never did)."""
    stopped = callback.stopping_reason.name != "NOT_STOPPED"
    return {"stopped": stopped, "reason": callback.stopping_reason.name.lower(),
            "message": callback.stopping_reason_message, "stopped_epoch": callback.stopped_epoch if stopped else None,
            "monitor": callback.monitor, "best_score": float(callback.best_score)}


def batch_size(batch) -> int:
    """Samples in a batch: the length of its first tensor."""
    while isinstance(batch, (list, tuple, dict)):
        batch = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return len(batch)


def take_off_weight_averaging(trainer) -> Optional[str]:
    """``swa`` or ``ema`` when a weight-averaging callback trains the model (it is taken off the trainer: the
    checkpoints hold the averaged weights, which a test must load as they are), else None."""
    for callback in trainer.callbacks:
        if isinstance(callback, (StochasticWeightAveraging, WeightAveraging)):
            trainer.callbacks.remove(callback)
            return "swa" if isinstance(callback, StochasticWeightAveraging) else "ema"
    return None


class HparamsWithScore(Callback):
    """TensorBoard's HPARAMS tab: when training ends, the run's settings with ``hp_metric``, its best score of the
    monitored metric (written before the logger closes its event file)."""

    def __init__(self, hyperparameters: dict):
        self.hyperparameters = hyperparameters

    def on_train_end(self, trainer, pl_module) -> None:
        score = getattr(trainer.checkpoint_callback, "best_model_score", None)
        for logger in trainer.loggers:
            if type(logger).__name__ == "TensorBoardLogger" and score is not None:
                logger.log_hyperparams(self.hyperparameters, metrics={"hp_metric": float(score)})


class Throughput(ThroughputMonitor):
    """Lightning's ThroughputMonitor (per-step figures to the logger), plus each epoch's training throughput in
    history.csv: ``train/samples_per_sec``, ``train/batches_per_sec`` and, where torch can count the model's
    FLOPs (a model with ``example_input_array``), ``train/flops_per_sec`` (3x the forward pass, the usual
    estimate of forward and backward)."""

    def __init__(self, window_size: int = 100):
        """
        Args:
            window_size: steps the per-step figures are averaged over.
        """
        super().__init__(batch_size_fn=batch_size, window_size=window_size)
        self._epoch = None

    def on_fit_start(self, trainer, pl_module) -> None:
        example = getattr(pl_module, "example_input_array", None)
        if isinstance(example, torch.Tensor) and not hasattr(pl_module, "flops_per_batch"):
            with torch.no_grad():
                forward = measure_flops(pl_module, lambda: pl_module(example.to(pl_module.device)))
            self.flops_per_sample = 3 * forward / len(example)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch = {"start": self._now(trainer), "end": None, "samples": 0, "batches": 0}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if getattr(self, "flops_per_sample", None) is not None:
            pl_module.flops_per_batch = self.flops_per_sample * batch_size(batch)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self._epoch["samples"] += batch_size(batch)
        self._epoch["batches"] += 1
        self._epoch["end"] = self._now(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        seconds = (self._epoch["end"] or self._epoch["start"]) - self._epoch["start"]
        if not seconds:
            return
        rates = {"samples_per_sec": self._epoch["samples"] / seconds,
                 "batches_per_sec": self._epoch["batches"] / seconds}
        if getattr(pl_module, "flops_per_batch", None):
            rates["flops_per_sec"] = pl_module.flops_per_batch * self._epoch["batches"] / seconds
        pl_module.log_dict({f"train/{name}": value for name, value in rates.items()}, on_step=False, on_epoch=True)

    @staticmethod
    def _now(trainer) -> float:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()


class ParameterHistograms(Callback):
    """Histograms of every parameter and its gradient, every ``every_n_epochs`` epochs, to TensorBoard or W&B
    (seed 004's wish); with another logger, or none, one line says they need one of those two."""

    def __init__(self, every_n_epochs: int = 1):
        """
        Args:
            every_n_epochs: epochs between two sets of histograms.
        """
        self.every_n_epochs = every_n_epochs
        self.loggers = []

    def on_fit_start(self, trainer, pl_module) -> None:
        self.loggers = [logger for logger in trainer.loggers if type(logger).__name__ in ("TensorBoardLogger",
                                                                                          "WandbLogger")]
        if not self.loggers and trainer.is_global_zero:
            print("histograms need the TensorBoard or W&B logger (trainer.logger); none is written", file=sys.stderr)

    def _due(self, trainer) -> bool:
        return bool(self.loggers) and trainer.current_epoch % self.every_n_epochs == 0 and trainer.is_global_zero

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self._due(trainer) and trainer.fit_loop.epoch_loop.batch_progress.current.ready == 1:  # an epoch's first
            self._write(trainer, {f"gradients/{name}": p.grad for name, p in pl_module.named_parameters()
                                  if p.grad is not None})

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._due(trainer):
            self._write(trainer, {f"parameters/{name}": p for name, p in pl_module.named_parameters()})

    def _write(self, trainer, tensors: dict) -> None:
        for logger in self.loggers:
            if type(logger).__name__ == "TensorBoardLogger":
                for name, tensor in tensors.items():
                    logger.experiment.add_histogram(name, tensor.detach().float().cpu(), trainer.global_step)
            else:
                import wandb

                logger.experiment.log({name: wandb.Histogram(tensor.detach().float().cpu().numpy())
                                       for name, tensor in tensors.items()}, step=trainer.global_step)


class Compile(Callback):
    """``torch.compile`` on the LightningModule's forward, in place (``nn.Module.compile``): checkpoints keep their
    keys, so one saved with compile on loads with it off, and the reverse."""

    def __init__(self, mode: str = "default", fullgraph: bool = False, dynamic: Optional[bool] = None):
        """
        Args:
            mode: default, reduce-overhead or max-autotune (torch.compile's modes).
            fullgraph: fail instead of splitting the graph where torch cannot trace.
            dynamic: shapes that change between batches (None: let torch decide).
        """
        self.options = {"mode": mode, "fullgraph": fullgraph, "dynamic": dynamic}

    def setup(self, trainer, pl_module, stage: str) -> None:
        pl_module.compile(**self.options)
