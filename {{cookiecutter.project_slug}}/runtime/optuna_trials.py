"""An optuna trial trained as an experiment version: the study helpers sh/optuna_search.py shares with the
pruning callback that runs inside the training process. Removed with the optuna choice, as one unit.

sh/optuna_search.py appends ``OptunaPruning`` to each trial's version.yaml (``trainer: callbacks+:``),
naming the storage, the study, the trial number and the pruner; the callback loads that trial, so the
version trains the same way whether the search or sh/run.py starts it. It follows optuna_integration's
PyTorchLightningPruningCallback, but stops a pruned trial with ``trainer.should_stop`` (the run ends
normally and keeps its results), records ``pruned_at_epoch`` on the trial for the search and
``run_status`` ``pruned`` for the run's manifest.json and metrics.json. A trial that already finished
(a re-run) trains without reporting.
"""
import warnings
from typing import Optional, Union

import optuna
from pytorch_lightning import Callback
from pytorch_lightning.utilities.rank_zero import rank_zero_info

from contract import ConfigError

from .errors import masked, one_line

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


def database_url(url: str) -> str:
    """``url`` as SQLAlchemy opens it: a bare ``postgresql://`` (or ``postgres://``) goes through psycopg 3 when it
    is installed (the project's ``postgresql`` extra); ``postgresql+psycopg2://`` and the like are kept."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "postgresql://" + rest  # SQLAlchemy's default driver, psycopg2, if that is installed
        return "postgresql+psycopg://" + rest
    return url


def database_errors() -> tuple:
    """What a study database that stops answering raises: SQLAlchemy's errors, and optuna's wrapping of them."""
    import sqlalchemy.exc

    return sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError


def database_error(error: BaseException) -> str:
    """The one line a database's own error says (psycopg's, sqlite's), past SQLAlchemy's and optuna's wrapping."""
    while isinstance(error, optuna.exceptions.StorageInternalError) and error.__cause__ is not None:
        error = error.__cause__
    return one_line(getattr(error, "orig", None) or error)[:200]


def open_storage(url: str, **options) -> optuna.storages.RDBStorage:
    """The study database at ``url``, opened (its tables made when new): the one place a storage URL is opened.
    ``options``: RDBStorage's own (the heartbeat). ConfigError naming the URL (password masked) when it is
    malformed, names an unknown database, needs a driver that is not installed, or the database does not answer."""
    import sqlalchemy.exc

    try:  # pool_pre_ping: a connection the server dropped (a restart) is replaced, not used
        return optuna.storages.RDBStorage(database_url(url), engine_kwargs={"pool_pre_ping": True}, **options)
    except sqlalchemy.exc.NoSuchModuleError:
        why = f"unknown database kind {url.split(':', 1)[0]!r} (sqlite, postgresql, mysql ...)"
    except sqlalchemy.exc.ArgumentError as error:
        why = f"not a database URL ({one_line(error)}); e.g. sqlite:///res/opt/optuna.db or postgresql://user@host/db"
    except ImportError as error:
        hint = '; pip install "psycopg[binary]"' if url.startswith("postgres") else ""
        why = f"its database driver is not installed ({one_line(error.__cause__ or error)}){hint}"
    except sqlalchemy.exc.SQLAlchemyError as error:
        why = f"the database does not answer ({database_error(error)})"
    raise ConfigError(f"--storage {masked(url)}: {why}")


def was_pruned(storage: str, trial: optuna.trial.Trial) -> bool:
    """Whether the training process marked ``trial`` pruned; read from the database, past this process's cache."""
    return PRUNED_AT in open_storage(storage).get_trial(trial._trial_id).user_attrs


def load_trial(storage: str, study_name: str, trial_number: int, pruner) -> Optional[optuna.trial.Trial]:
    """Trial ``trial_number`` of the study, judged by ``pruner`` (storage does not keep a study's pruner).

    None when the trial has finished already; KeyError when the study or the trial does not exist.
    """
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage), pruner=make_pruner(pruner))
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, trial_number)
    if study._storage.get_trial(trial_id).state.is_finished():
        return None
    return optuna.trial.Trial(study, trial_id)


class OptunaPruning(Callback):
    """Report ``monitor`` to optuna trial ``trial_number`` of ``study_name`` after each validation epoch."""

    def __init__(self, storage: str, study_name: str, trial_number: int, monitor: Optional[str] = None,
                 pruner: Union[str, dict] = "median"):
        """
        Args:
            storage: the study's storage URL (sh/optuna_search.py writes an absolute one).
            study_name: the study.
            trial_number: this version's trial in the study.
            monitor: the metric reported after each validation epoch (default: the run's run.monitor).
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
        if self.monitor is None:
            raise ConfigError("OptunaPruning has no monitor: main.py gives it run.monitor; pass monitor= when "
                              "you build it yourself")
        if trainer.is_global_zero:
            self._trial = self._load_trial()

    def _report(self, score: float, epoch: int) -> bool:
        """Report ``score``; whether the pruner stops the run. A study database that stops answering is warned
        of once and the run trains on unpruned: its results are the run's, the search tells the study later."""
        try:
            self._trial.report(score, step=epoch)
            prune = self._trial.should_prune()
            if prune:
                self._trial.set_user_attr(PRUNED_AT, epoch)
                rank_zero_info(f"optuna: trial {self.trial_number} pruned at epoch {epoch}")
            return prune
        except database_errors() as error:
            warnings.warn(f"optuna: the study database {masked(self.storage)} stopped answering "
                          f"({database_error(error)}); training on without pruning", stacklevel=2)
            self._trial = None
            return False

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
                prune = self._report(float(score), trainer.current_epoch)
        if trainer.world_size > 1:
            prune = trainer.strategy.broadcast(prune)
        if prune:
            trainer.should_stop, self.run_status = True, "pruned"
