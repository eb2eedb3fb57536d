"""Callbacks behind the config/debug presets that Lightning does not ship in the form this project needs."""
from pathlib import Path

from pytorch_lightning import Callback
from pytorch_lightning.callbacks import LearningRateFinder
from pytorch_lightning.utilities import grad_norm

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

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        norms = grad_norm(pl_module, norm_type=self.norm_type)
        if not self.per_layer:
            norms = {key: value for key, value in norms.items() if key.endswith("_total")}
        pl_module.log_dict(norms, on_step=True, on_epoch=False)


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
            num_training_steps: steps of the range test (at most one epoch's worth).
            mode: "exponential" or "linear" increase between the steps.
            early_stop_threshold: stop once the loss exceeds this multiple of the best loss.
        """
        super().__init__(min_lr, max_lr, num_training_steps, mode, early_stop_threshold, update_attr=False)

    def lr_find(self, trainer, pl_module) -> None:
        super().lr_find(trainer, pl_module)
        if self.optimal_lr is None or not trainer.is_global_zero:
            return
        suggestion = self.optimal_lr.suggestion()
        path = Path(trainer.default_root_dir) / "lr_find.json"
        write_json_atomic(path, {"suggestion": suggestion, **self.optimal_lr.results})
        advice = (f"{suggestion:.3g}; set optimizer.init_args.lr in the version's config" if suggestion
                  else "none (too few steps)")
        print(f"Learning-rate finder: suggested learning rate {advice}; curve in {path}", flush=True)
