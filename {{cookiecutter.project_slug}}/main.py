"""Train, validate, test or predict with LightningCLI; every setting comes from YAML configs.

    python main.py fit -c config/example.yaml
    python main.py fit -c config/<exp>/share.yaml -c config/<exp>/version_0/version.yaml
    python main.py test -c config/example.yaml --ckpt_path best       # or last, or a checkpoint file
    python main.py predict -c config/example.yaml --ckpt_path best    # writes res/example/version_0/predictions.csv
    python main.py fit --help

Results of a run go to ``<run.res_dir>/<run.experiment>/<run.version>/``.
"""
import sys
from argparse import ArgumentError
from pathlib import Path

from pytorch_lightning import LightningDataModule, LightningModule
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from data import DatasetNotFoundError
from runtime.checkpoints import LIGHTNING_RESUME_NAMES, resolve_checkpoint, use_atomic_checkpoints
from runtime.checks import ConfigError, check_callbacks, check_hardware
from runtime.errors import cause_of_type, one_line, parse_error_message, refused_setting
from runtime.files import read_json
from runtime.gpus import select_gpus
from runtime.manifest import RunManifest, command_line
from runtime.outputs import RunPaths, StoresMadeWhileBuilding, logger_configs, route_outputs
from runtime.performance import use_tensor_cores
from runtime.predictions import PredictionCSVWriter
from runtime.records import HistoryCSV, SaveRunConfig, fit_summary, record
from runtime.resume import KeepCSVRows, continue_logger_runs

PROJECT_ROOT = Path(__file__).resolve().parent
LINKED_FROM_DATA = ("num_classes", "input_shape")  # datamodule attributes passed to the model's __init__


class ResearchCLI(LightningCLI):
    """LightningCLI that files every output of a run under its experiment and version."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--run.experiment", type=str, default="default", help="experiment name (results folder)")
        parser.add_argument("--run.version", type=str, default="version_0", help="version folder inside the experiment")
        parser.add_argument("--run.res_dir", type=str, default="res", help="results root, relative to the project")
        parser.add_argument("--run.test_after_fit", type=bool, default=True,
                            help="after fit, test the best checkpoint and record it in metrics.json")
        parser.add_argument("--run.overwrite", type=bool, default=False,
                            help="fit: replace the results already in the run folder (without it, fit refuses)")
        for name in LINKED_FROM_DATA:
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")

    def parse_arguments(self, parser, args) -> None:
        """Parse, then check the run's folder names and find its checkpoint before anything is built or written."""
        self.command_line = command_line(PROJECT_ROOT / "main.py", args)
        super().parse_arguments(parser, args)
        subcommand = self.config["subcommand"]
        config = self.config[subcommand]
        paths = RunPaths.from_config(config.run)
        if paths.name_problem():
            raise ConfigError(paths.name_problem())
        config.ckpt_path = resolve_checkpoint(config.ckpt_path, paths, subcommand)

    @property
    def run_config(self):
        return self.config[self.subcommand].run

    @property
    def paths(self) -> RunPaths:
        return RunPaths.from_config(self.run_config)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        check_hardware(config.trainer)
        check_callbacks(config.trainer)
        select_gpus(config.trainer)
        use_tensor_cores(config.trainer)
        route_outputs(config.trainer, self.paths)
        if self.subcommand != "fit" or config.ckpt_path:  # log into the runs of the version being continued
            recorded = read_json(self.paths.manifest_file, default={}).get("logger_runs") or {}
            continue_logger_runs(logger_configs(config.trainer), recorded)
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

    def instantiate_trainer(self, **kwargs):
        """The trainer; a fast_dev_run fit saves its config.yaml too (LightningCLI leaves it out then)."""
        trainer = super().instantiate_trainer(**kwargs)
        if trainer.fast_dev_run:
            trainer.callbacks.append(SaveRunConfig(self._parser(self.subcommand), self.config[self.subcommand],
                                                   **self.save_config_kwargs))
        return trainer

    def before_fit(self) -> None:
        """Lock and guard the run folder (manifest.json follows once the data is set up), record history.csv
        whatever the logger, and write checkpoints atomically."""
        config = self.config[self.subcommand]
        merged = config.as_dict()
        merged["model"].setdefault("init_args", {}).update(
            {name: getattr(self.datamodule, name) for name in LINKED_FROM_DATA})  # linked values, not the defaults
        self.manifest = RunManifest(self.paths, command=self.command_line, config=merged,
                                    seed=config.seed_everything, project_root=PROJECT_ROOT,
                                    resumed_from=config.ckpt_path, overwrite=self.run_config.overwrite,
                                    enabled=rank_zero_only.rank == 0)
        self.trainer.callbacks[:0] = [self.manifest, HistoryCSV(self.paths.history_file)]  # ahead of the checkpoints
        if config.ckpt_path and config.ckpt_path not in LIGHTNING_RESUME_NAMES:
            self.trainer.callbacks.append(KeepCSVRows(self.trainer.loggers, config.ckpt_path))
        use_atomic_checkpoints(self.trainer)

    def fit(self, **kwargs) -> None:
        with self.manifest.watching():
            self.trainer.fit(**kwargs)

    def after_fit(self) -> None:
        with self.manifest.watching():
            summary = fit_summary(self.trainer, self.manifest.started)
            if self.trainer.is_global_zero:
                record(self.paths, "fit", summary, forget=("test", "tests"))  # they scored the checkpoints before
            if self.run_config.test_after_fit and summary["status"] == "finished":  # not interrupted, not pruned
                ckpt_path = summary["best_model_path"]  # the path itself: "best" is ambiguous with two ModelCheckpoints
                self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt_path)
                self._record_test("test")
        self.manifest.finish(summary["status"])

    def before_predict(self) -> None:
        self.trainer.callbacks.append(PredictionCSVWriter(self.paths.predictions_file))

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


def main(args=None) -> int:
    try:
        ResearchCLI(
            LightningModule,
            LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            seed_everything_default=2022,
            save_config_callback=SaveRunConfig,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"exit_on_error": False,  # parse errors raise; reported below as one line
                           "allow_abbrev": False},  # --trainer.max_epoch is an error, not max_epochs
            args=args,
        )
    except ArgumentError as error:
        print(f"ERROR: {parse_error_message(error, sys.argv[1:] if args is None else args)}", file=sys.stderr)
        return 2
    except Exception as error:  # jsonargparse wraps what a class raises while it is instantiated
        known = cause_of_type(error, (ConfigError, DatasetNotFoundError))
        if known is None:
            raise
        print(f"ERROR: {one_line(known)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
