"""The LightningCLI behind main.py: files every output of a run under ``<run.res_dir>/<experiment>/<version>/``
and checks the research contract (contract.py) as early as each part can be known.

What each step adds to Lightning's own CLI:

- before the parser is built: the datamodule class the configs name is read for its ``links``
  (contract point 1), and the model's ``__init__`` is checked for an argument of each name;
- parse: the version folder names the run (run_folder.py's identity rule); ``--ckpt_path best|last``
  is found on disk before anything is written;
- before the classes are built: the machine is checked and the GPUs picked (preflight.py), loggers,
  checkpoints and profiler files are routed into the run folder (a team's MLflow server must answer),
  callbacks that watch a metric get
  ``run.monitor`` / ``run.mode``, a continued run's logger runs are reopened;
- fit: the folder is locked and guarded, config.yaml, manifest.json, history.csv and metrics.json are
  written, checkpoints are written atomically, the best checkpoint is tested after fit; under SLURM,
  the time-out warning saves the requeue checkpoint between two batches (slurm_requeue.py);
- test and predict: scores go to metrics.json, predictions to predictions.csv.

A fault of input or environment ends as one ``ERROR:`` line (``reported_errors``); a bug keeps its traceback.
"""
import importlib
import sys
from argparse import ArgumentError
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal, Optional

import yaml
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.plugins.environments import SLURMEnvironment
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from contract import ConfigError, DatasetNotFoundError, check_model_takes_links, links_of

from .callbacks import (
    HistoryCSV,
    HparamsWithScore,
    KeepCSVRows,
    MonitorCheck,
    PredictionWriter,
    RunRecorder,
    take_off_weight_averaging,
    use_atomic_checkpoints,
)
from .errors import cause_of_type, one_line, parse_error_message, refused_setting
from .preflight import check_tracking_server, preflight
from .run_folder import (
    DISK_FULL,
    LIGHTNING_RESUME_NAMES,
    PROJECT_ROOT,
    ResultsNotWritten,
    RunPaths,
    StoresMadeWhileBuilding,
    class_name,
    config_file_at,
    continue_logger_runs,
    flatten,
    record,
    resolve_checkpoint,
    route_outputs,
    version_identity,
    with_version_identity,
    write_problem,
)
from .slurm_requeue import SlurmRequeue


def configured_classes(args) -> dict:
    """``{"model": class, "data": class}`` as the configs and options in ``args`` name them, the last one
    winning (read before the parser exists, for the datamodule's ``links``); a section that names no
    importable class is left out, for jsonargparse to report when it parses."""
    paths = {}
    for i, token in enumerate(args):
        config = config_file_at(args, i)
        if config is not None:
            try:
                settings = yaml.safe_load(Path(config).read_text())
            except (OSError, yaml.YAMLError):
                continue
            for section in ("model", "data"):
                value = settings.get(section) if isinstance(settings, dict) else None
                value = value.get("class_path") if isinstance(value, dict) else value
                if isinstance(value, str) and not value.endswith((".yaml", ".yml")):
                    paths[section] = value
        for section in ("model", "data"):
            for flag in (f"--{section}", f"--{section}.class_path"):
                value = token.split("=", 1)[1] if token.startswith(flag + "=") else (
                    args[i + 1] if token == flag and i + 1 < len(args) else None)
                if value and not value.endswith((".yaml", ".yml")):
                    paths[section] = value
    classes = {}
    for section, path in paths.items():
        module, _, name = path.rpartition(".")
        try:
            classes[section] = getattr(importlib.import_module(module or section), name)
        except (ImportError, AttributeError, ValueError):
            continue
    return classes


def without_empty_configs(args) -> list:
    """``args`` without the config files that hold no settings (a new version.yaml holds only comments):
    jsonargparse refuses an empty config file, and an empty file changes nothing."""
    out, i = [], 0
    while i < len(args):
        config = config_file_at(args, i)
        step = 1 if config is None or args[i].startswith("--config=") else 2
        try:
            empty = config is not None and yaml.safe_load(Path(config).read_text()) is None
        except (OSError, yaml.YAMLError):
            empty = False  # jsonargparse reports what is wrong with it
        out += [] if empty else args[i:i + step]
        i += step
    return out


def linked_value(datamodule, name: str):
    """The value a datamodule links into the model (contract point 1): its attribute ``name``."""
    if not hasattr(datamodule, name):
        raise ConfigError(f"{type(datamodule).__qualname__}.links names {name}, which its __init__ does not set")
    return getattr(datamodule, name)


def watch_monitor(trainer_config, run_config) -> None:
    """Callbacks with a ``monitor`` argument left unset watch ``run.monitor`` (with ``run.mode`` where they take a
    ``mode``); a ModelCheckpoint without its own file name names its files after the score."""
    for callback in trainer_config.callbacks or []:
        args = getattr(callback, "init_args", None)
        if args is None or "monitor" not in args or args.monitor is not None:
            continue
        args.monitor = run_config.monitor
        if "mode" in args:
            args.mode = run_config.mode
        if class_name(callback) == "ModelCheckpoint" and args.get("filename") is None:
            score = "{" + run_config.monitor + ":.4f}"  # e.g. epoch007-val_acc0.9812.ckpt
            args.filename = "epoch{epoch:03d}-" + run_config.monitor.replace("/", "_") + score
            args.auto_insert_metric_name = False


@contextmanager
def checkpoint_fits(ckpt_path):
    """A checkpoint whose weights do not fit the configured model (another model's, or other settings') is a
    ConfigError naming it, not torch's page of missing and unexpected keys."""
    try:
        yield
    except RuntimeError as error:
        if ckpt_path and str(error).startswith("Error(s) in loading state_dict"):
            raise ConfigError(f"--ckpt_path {ckpt_path}: the checkpoint's weights do not fit this model "
                              f"({one_line(error)[:300]})") from error
        raise


class ResearchCLI(LightningCLI):
    """LightningCLI that files every output of a run under its experiment and version (module docstring)."""

    def __init__(self, *classes, args=None, **kwargs):
        self.given_args = list(sys.argv[1:] if args is None else args)
        self.argv = without_empty_configs(with_version_identity(self.given_args))
        found = configured_classes(self.argv)
        self.links = links_of(found["data"]) if "data" in found else ()
        if "data" in found and "model" in found:
            check_model_takes_links(found["model"], found["data"])
        kwargs.setdefault("save_config_callback", None)  # RunRecorder writes config.yaml, whatever the logger
        kwargs.setdefault("parser_kwargs", {"exit_on_error": False,  # parse errors raise: reported as one line
                                            "allow_abbrev": False})  # --trainer.max_epoch is an error, not guessed
        super().__init__(*classes, args=self.argv, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--run.experiment", type=str, default="default", help="experiment name (results folder)")
        parser.add_argument("--run.version", type=str, default="version_0", help="version folder inside the experiment")
        parser.add_argument("--run.res_dir", type=str, default="res", help="results root, relative to the project")
        parser.add_argument("--run.monitor", type=str, default="val/loss",
                            help="validation metric that judges a run: best checkpoint, tables, searches")
        parser.add_argument("--run.mode", type=Literal["max", "min"], default="min",
                            help="whether a higher (max) or lower (min) run.monitor is better")
        parser.add_argument("--run.test_after_fit", type=bool, default=True,
                            help="after fit, test the best checkpoint and record it in metrics.json")
        parser.add_argument("--run.overwrite", type=bool, default=False,
                            help="fit: replace the results already in the run folder (without it, fit refuses)")
        for name in self.links:
            parser.link_arguments("data", f"model.init_args.{name}", compute_fn=partial(linked_value, name=name),
                                  apply_on="instantiate")

    def parse_arguments(self, parser, args) -> None:
        """Parse, then check the run's folder names and find its checkpoint before anything is built or written."""
        self.config = parser.parse_args(args)
        config = self.config[self.config.subcommand]
        paths = RunPaths.from_config(config.run)
        if paths.name_problem():
            raise ConfigError(paths.name_problem())
        config.ckpt_path = resolve_checkpoint(config.ckpt_path, paths, self.config.subcommand)

    @property
    def run_config(self):
        return self.config[self.subcommand].run

    @property
    def paths(self) -> RunPaths:
        return RunPaths.from_config(self.run_config)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        preflight(config.trainer)
        route_outputs(config.trainer, self.paths)
        check_tracking_server(config.trainer)
        watch_monitor(config.trainer, config.run)
        if self.subcommand != "fit" or config.ckpt_path:  # log into the runs of the version being continued
            continue_logger_runs(config.trainer, self.paths)
        if self.subcommand == "predict":
            config.trainer.logger = False  # predict logs nothing: no empty logger files or runs
            if config.return_predictions is None:
                config.return_predictions = False  # they go to predictions.csv; do not also hold them all in memory

    def instantiate_classes(self) -> None:
        """Build the model, data and trainer; a setting Lightning or torch refuses is one ConfigError line."""
        try:
            with StoresMadeWhileBuilding(self.paths):
                super().instantiate_classes()
        except Exception as error:
            refused = refused_setting(error)
            if refused is None:
                raise
            raise ConfigError(f"{type(refused).__name__}: {one_line(refused)}") from error

    def before_fit(self) -> None:
        """Lock and guard the run folder, and add the callbacks that record the run."""
        config = self.config[self.subcommand]
        merged = config.as_dict()
        merged["model"].setdefault("init_args", {}).update(
            {name: getattr(self.datamodule, name) for name in self.links})  # the linked values, not the defaults
        fit_config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))[self.subcommand]
        self.recorder = RunRecorder(self.paths, command=[sys.executable, str(PROJECT_ROOT / "main.py"),
                                                         *map(str, self.given_args)],
                                    config_text=yaml.safe_dump(fit_config, sort_keys=False), config=merged,
                                    seed=config.seed_everything, project_root=PROJECT_ROOT,
                                    resumed_from=config.ckpt_path, overwrite=self.run_config.overwrite,
                                    enabled=rank_zero_only.rank == 0)
        self.trainer.callbacks.insert(0, self.recorder)
        # after the other callbacks (which may log epoch metrics), before the checkpoints (which Lightning runs last)
        self.trainer.callbacks += [HistoryCSV(self.paths.history_file), MonitorCheck(self.run_config.monitor),
                                   HparamsWithScore(self.hyperparameters())]
        if config.ckpt_path and config.ckpt_path not in LIGHTNING_RESUME_NAMES:
            self.trainer.callbacks.append(KeepCSVRows(self.trainer.loggers, config.ckpt_path))
        if SLURMEnvironment.detect():
            self.trainer.callbacks.append(SlurmRequeue())  # SLURM's warning: requeue checkpoint, between batches
        use_atomic_checkpoints(self.trainer)

    def fit(self, **kwargs) -> None:
        with self.recorder.watching(), checkpoint_fits(kwargs.get("ckpt_path")):
            self.trainer.fit(**kwargs)

    def validate(self, **kwargs) -> None:
        with checkpoint_fits(kwargs.get("ckpt_path")):
            self.trainer.validate(**kwargs)

    def test(self, **kwargs) -> None:
        with checkpoint_fits(kwargs.get("ckpt_path")):
            self.trainer.test(**kwargs)

    def predict(self, **kwargs) -> None:
        with checkpoint_fits(kwargs.get("ckpt_path")):
            self.trainer.predict(**kwargs)

    def after_fit(self) -> None:
        """Record the fit, log its settings with its best score (TensorBoard's HPARAMS tab), test what it made.

        The test scores the best checkpoint; with EMA its weights are the averaged ones; with SWA, which averages
        only when training ends, the averaged model is saved as ``checkpoints/swa.ckpt`` and tested instead.
        """
        with self.recorder.watching():
            summary = self.recorder.summary(self.trainer, self.run_config.monitor, self.run_config.mode)
            averaged = take_off_weight_averaging(self.trainer)
            tested = summary["best_model_path"]  # the path itself: "best" is ambiguous with two ModelCheckpoints
            if averaged == "swa" and summary["status"] == "finished":
                tested = str(self.paths.checkpoint_dir / "swa.ckpt")
                self.trainer.save_checkpoint(tested)
            summary["tested_weights"] = f"{averaged or 'raw'} weights of {Path(tested).name}" if tested else None
            if self.trainer.is_global_zero:
                record(self.paths, "fit", summary, forget=("test", "tests"))  # they scored the checkpoints before
            if self.run_config.test_after_fit and summary["status"] == "finished":  # not interrupted, not pruned
                self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=tested)
                self._record_test("test")
        self.recorder.finish(summary["status"])

    def hyperparameters(self) -> dict:
        """What sets this run apart, flat: the model, data, optimizer and scheduler settings, the seed, and every
        key the version's own version.yaml sets."""
        config = flatten(self.config[self.subcommand].as_dict())
        keys = [key for key in config if key.startswith(("model.", "data.", "optimizer.", "lr_scheduler."))]
        for i, _ in enumerate(self.argv):
            version_file = config_file_at(self.argv, i)
            if version_file and "version" in version_identity(version_file):
                keys += flatten(yaml.safe_load(Path(version_file).read_text()) or {})
        return {key: config[key] for key in dict.fromkeys([*keys, "seed_everything"]) if key in config
                and isinstance(config[key], (int, float, str, bool))}

    def before_validate(self) -> None:
        self.trainer.callbacks.append(KeepCSVRows(self.trainer.loggers))  # the fit's rows stay in metrics.csv

    def before_test(self) -> None:
        self.trainer.callbacks.append(KeepCSVRows(self.trainer.loggers))

    def before_predict(self) -> None:
        self.trainer.callbacks.append(PredictionWriter(self.paths.predictions_file))

    def after_predict(self) -> None:
        if self.trainer.is_global_zero:
            print(f"Predictions written to {self.paths.predictions_file}", flush=True)

    def after_test(self) -> None:
        """``main.py test``: its scores go beside those of fit's best checkpoint (metrics.json's ``test``),
        under ``tests.<checkpoint file>``, never over them."""
        self._record_test("tests", Path(self.config.test.ckpt_path).name)

    def _record_test(self, section: str, checkpoint: str = None) -> None:
        if self.trainer.is_global_zero:
            results = {k: float(v) for k, v in self.trainer.callback_metrics.items() if k.startswith("test/")}
            record(self.paths, section, results, key=checkpoint)


@dataclass
class Outcome:
    exit_code: int = 0


@contextmanager
def reported_errors(args=None):
    """Run the block (a ResearchCLI); a fault of input or environment becomes one ``ERROR:`` line on stderr and
    ``outcome.exit_code`` 1 (2 for a command line or config jsonargparse refuses); a bug keeps its traceback."""
    outcome = Outcome()
    try:
        yield outcome
    except ArgumentError as error:
        print(f"ERROR: {parse_error_message(error, sys.argv[1:] if args is None else args)}", file=sys.stderr)
        outcome.exit_code = 2
    except Exception as error:  # jsonargparse wraps what a class raises while it is instantiated
        known = cause_of_type(error, (ConfigError, DatasetNotFoundError, ResultsNotWritten))
        disk = cause_of_type(error, (OSError,))
        if known is None and disk is not None and disk.errno in DISK_FULL:  # a logger's own write, say
            known = write_problem(disk)
        if known is None:
            raise
        print(f"ERROR: {one_line(known)}", file=sys.stderr)
        outcome.exit_code = 1


def merged_configs(main, arg_lists) -> list[Optional[dict]]:
    """The config ``main`` (main.py's) would run with for each argument list (``["fit", "-c", ...]``), every
    setting with its default, parsed in this one process; None for one that does not parse. sh/ scripts call
    it through ``python -m runtime.cli`` for versions not trained yet, instead of merging configs by hand."""
    import contextlib
    import io

    configs = []
    for args in arg_lists:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()), \
                contextlib.suppress(SystemExit):
            main([*args, "--print_config"])
        loaded = yaml.safe_load(printed.getvalue()) if printed.getvalue().strip() else None
        configs.append(loaded if isinstance(loaded, dict) else None)
    return configs


if __name__ == "__main__":  # python -m runtime.cli '<JSON list of argument lists>': their merged configs, as JSON
    import json

    from main import main

    print(json.dumps(merged_configs(main, json.loads(sys.argv[1])), default=str))
