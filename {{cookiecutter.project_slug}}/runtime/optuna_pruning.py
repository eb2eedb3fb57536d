"""Optuna pruning inside the training process: report the metric each epoch, stop a trial the pruner drops.

sh/optuna_search.py appends this callback to each trial's version.yaml (``trainer: callbacks+:``),
naming the storage, the study, the trial number and the pruner; the callback loads that trial,
so the version trains the same way whether the search or sh/run.py starts it. It follows
optuna_integration's PyTorchLightningPruningCallback, but stops a pruned trial with
``trainer.should_stop`` (the run ends normally and keeps its results), records
``pruned_at_epoch`` on the trial for the search and ``run_status`` ``pruned`` for the run's
manifest.json and metrics.json. A trial that already finished (a re-run) trains without reporting.
"""
import warnings
from typing import Optional, Union

import optuna
from pytorch_lightning import Callback
from pytorch_lightning.utilities.rank_zero import rank_zero_info

from .optuna_study import PRUNED_AT, load_trial


class OptunaPruning(Callback):
    """Report ``monitor`` to optuna trial ``trial_number`` of ``study_name`` after each validation epoch."""

    def __init__(self, storage: str, study_name: str, trial_number: int, monitor: str = "val/acc",
                 pruner: Union[str, dict] = "median"):
        """
        Args:
            storage: the study's storage URL (sh/optuna_search.py writes an absolute one).
            study_name: the study.
            trial_number: this version's trial in the study.
            monitor: the metric reported after each validation epoch.
            pruner: the study's pruner, as in config/search/optuna.yaml (storage does not keep it).
        """
        super().__init__()
        self.storage, self.study_name, self.trial_number = storage, study_name, trial_number
        self.monitor, self.pruner = monitor, pruner
        self._trial: Optional[optuna.trial.Trial] = None
        self.run_status: Optional[str] = None  # "pruned" once the pruner stopped the run (main.py records it)

    def _load_trial(self) -> Optional[optuna.trial.Trial]:
        try:
            trial = load_trial(self.storage, self.study_name, self.trial_number, self.pruner)
        except KeyError as error:
            warnings.warn(f"optuna: {error}; training without pruning", stacklevel=2)
            return None
        if trial is None:
            rank_zero_info(f"optuna: trial {self.trial_number} of {self.study_name} has finished; "
                           "training without reporting to it")
        return trial

    def on_fit_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self._trial = self._load_trial()

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        prune = False
        if self._trial is not None:
            score = trainer.callback_metrics.get(self.monitor)
            if score is None:
                warnings.warn(f"optuna: metric {self.monitor!r} was not logged; nothing reported for pruning",
                              stacklevel=2)
            else:
                epoch = trainer.current_epoch
                self._trial.report(float(score), step=epoch)
                prune = self._trial.should_prune()
                if prune:
                    self._trial.set_user_attr(PRUNED_AT, epoch)
                    rank_zero_info(f"optuna: trial {self.trial_number} pruned at epoch {epoch}")
        if trainer.world_size > 1:
            prune = trainer.strategy.broadcast(prune)
        if prune:
            trainer.should_stop, self.run_status = True, "pruned"
