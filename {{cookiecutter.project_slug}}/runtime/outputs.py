"""Where a run writes: everything of one version goes to ``<res_dir>/<experiment>/<version>/``.

main.py calls ``route_outputs`` on the parsed config before anything is instantiated, so
the logger, the checkpoints, the saved config and metrics.json agree for every logger choice.
RunPaths imports nothing heavy: the scripts in sh/ use it to find a run's files without torch.
"""
from dataclasses import dataclass
from pathlib import Path

from .paths import folder_name_problem, project_path

LOCK_FD_ENV = "RUN_LOCK_FD"  # sh/run.py tells main.py which inherited descriptor holds the run's lock
SCRATCH_VERSION = "debug"  # config/debug presets write here; each fit into it replaces the one before


@dataclass(frozen=True)
class RunPaths:
    """The files of one run. ``run.log`` and ``.lock`` belong to sh/run.py, not to the run's results."""

    res_dir: Path
    experiment: str
    version: str

    @property
    def is_scratch(self) -> bool:
        return self.version == SCRATCH_VERSION

    @property
    def run_dir(self) -> Path:
        return self.res_dir / self.experiment / self.version

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def metrics_file(self) -> Path:
        return self.run_dir / "metrics.json"

    @property
    def predictions_file(self) -> Path:
        return self.run_dir / "predictions.csv"

    @property
    def manifest_file(self) -> Path:
        return self.run_dir / "manifest.json"

    @property
    def history_file(self) -> Path:
        return self.run_dir / "history.csv"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint_dir / "last.ckpt"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "run.log"

    @property
    def mlflow_store(self) -> Path:
        return self.res_dir / "mlflow.db"

    @property
    def lock_file(self) -> Path:
        return self.run_dir / ".lock"

    def result_entries(self) -> list[Path]:
        """What runs left in the folder: everything but sh/run.py's log and lock."""
        if not self.run_dir.is_dir():
            return []
        return sorted(p for p in self.run_dir.iterdir() if p not in (self.log_file, self.lock_file))

    @classmethod
    def from_config(cls, run_config) -> "RunPaths":
        return cls(project_path(run_config.res_dir), run_config.experiment, run_config.version)

    def name_problem(self) -> str:
        """Why the experiment or version cannot name a results folder, or '' (e.g. '' or '..' would write
        outside the version's folder, and --run.overwrite would then remove other runs' results)."""
        return (folder_name_problem("run.experiment", self.experiment)
                or folder_name_problem("run.version", self.version))


def _class_name(component) -> str:
    return str(getattr(component, "class_path", "")).rsplit(".", 1)[-1]


def _route_logger(logger, paths: RunPaths) -> None:
    args = logger.init_args
    name = _class_name(logger)
    if name in ("TensorBoardLogger", "CSVLogger"):
        args.save_dir, args.name, args.version = str(paths.res_dir), paths.experiment, paths.version
    elif name == "WandbLogger":
        args.save_dir, args.name = str(paths.run_dir), f"{paths.experiment}/{paths.version}"
    elif name == "MLFlowLogger":
        args.experiment_name, args.run_name = paths.experiment, paths.version
        args.tracking_uri = f"sqlite:///{paths.mlflow_store}"
        args.artifact_location = (paths.res_dir / "mlartifacts" / paths.experiment).as_uri()


def logger_configs(trainer_config) -> list:
    """The logger entries (class_path and init_args) of a parsed trainer config."""
    loggers = trainer_config.logger
    return [logger for logger in (loggers if isinstance(loggers, list) else [loggers]) if hasattr(logger, "init_args")]


class StoresMadeWhileBuilding:
    """What loggers write as soon as they are built (MLflow creates its database, and res/ for it), so a run
    refused a moment later can take it back: ``with StoresMadeWhileBuilding(paths): ...build...``."""

    def __init__(self, paths: RunPaths):
        self.new = [path for path in (paths.mlflow_store, paths.res_dir) if not path.exists()]

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if error is None:
            return
        for path in self.new:  # the database, then its folder when that is empty
            if path.is_file():
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def route_outputs(trainer_config, paths: RunPaths) -> None:
    """Point the trainer's root folder, logger(s), ModelCheckpoint(s) and profiler files at the run's folder."""
    trainer_config.default_root_dir = str(paths.run_dir)
    for logger in logger_configs(trainer_config):
        _route_logger(logger, paths)
    for callback in trainer_config.callbacks or []:
        if _class_name(callback) in ("ModelCheckpoint", "LatestCheckpoint"):
            callback.init_args.dirpath = str(paths.checkpoint_dir)
    profiler = trainer_config.profiler
    if hasattr(profiler, "init_args") and profiler.init_args.get("dirpath") is None:
        profiler.init_args.dirpath = str(paths.run_dir)
