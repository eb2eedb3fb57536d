"""Optuna pieces shared by sh/optuna_search.py (the workers) and runtime/optuna_pruning.py (the training run).

Imports optuna but not torch, so the search workers start quickly.
"""
from typing import Optional

import optuna

PRUNED_AT = "pruned_at_epoch"  # trial user attribute: set by the callback when the pruner stops the run


def make_pruner(setting) -> optuna.pruners.BasePruner:
    """``median``, ``none``, or a mapping ``median:`` -> MedianPruner arguments; ValueError otherwise."""
    name, options = next(iter(setting.items())) if isinstance(setting, dict) and len(setting) == 1 else (setting, {})
    if name == "none" and not options:
        return optuna.pruners.NopPruner()
    if name == "median" and isinstance(options, dict):
        try:
            return optuna.pruners.MedianPruner(**options)
        except TypeError as error:
            raise ValueError(f"pruner median: {error}") from None
    raise ValueError(f"pruner must be median, none, or median: with MedianPruner arguments, got {setting!r}")


def was_pruned(storage: str, trial: optuna.trial.Trial) -> bool:
    """Whether the training process marked ``trial`` pruned; read from the database, past this process's cache."""
    return PRUNED_AT in optuna.storages.RDBStorage(storage).get_trial(trial._trial_id).user_attrs


def load_trial(storage: str, study_name: str, trial_number: int, pruner) -> Optional[optuna.trial.Trial]:
    """Trial ``trial_number`` of the study, judged by ``pruner`` (storage does not keep a study's pruner).

    None when the trial has finished already; KeyError when the study or the trial does not exist.
    """
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=make_pruner(pruner))
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, trial_number)
    if study._storage.get_trial(trial_id).state.is_finished():
        return None
    return optuna.trial.Trial(study, trial_id)
