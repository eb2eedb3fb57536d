"""Callbacks behind the config/debug presets that Lightning does not ship in the form this project needs."""
from pathlib import Path

from pytorch_lightning import Callback
from pytorch_lightning.callbacks import BatchSizeFinder, LearningRateFinder
from pytorch_lightning.utilities import grad_norm
from pytorch_lightning.utilities.rank_zero import rank_zero_warn

from .files import write_json_atomic


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
