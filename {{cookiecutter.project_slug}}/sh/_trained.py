"""A trained version, loaded for sh/analyze.py and sh/export.py: its model from a checkpoint, its datamodule as
the run's config.yaml built it (with the checkpoint's data state: a table's encoding, a text vocabulary), and its
test batches. Imports torch (the experiment library in _experiments.py does not)."""
import argparse
import importlib
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from _experiments import ArgumentParser, UsageError, Version, find_experiment, shown
from contract import ConfigError, load_checkpoint
from runtime.run_folder import RunPaths, resolve_checkpoint


def import_class(class_path: str):
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@dataclass
class TrainedRun:
    """The model (eval mode, CPU), the datamodule set up for test, and where they came from."""

    paths: RunPaths
    checkpoint: Path
    model: torch.nn.Module
    datamodule: object

    def test_batches(self, limit: int = None):
        """(inputs tuple, labels) of the test split's batches: a batch is (inputs..., labels)."""
        for i, batch in enumerate(self.datamodule.test_dataloader()):
            if limit is not None and i >= limit:
                return
            yield tuple(batch[:-1]), batch[-1]

    @property
    def class_names(self) -> list:
        classes = getattr(self.datamodule, "classes", None)
        classes = classes() if callable(classes) else classes
        return [str(name) for name in classes] if classes else []


def trained_version_parser(doc: str) -> ArgumentParser:
    """The command line of a script about one trained version (``doc``: its module docstring): -e, -v, --ckpt, -c."""
    parser = ArgumentParser(description=doc.split("\n")[0], epilog=doc.split("\n", 2)[2],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-e", "--ex_name", required=True, help="experiment")
    parser.add_argument("-v", "--v_num", type=int, required=True, help="version number k of version_k")
    parser.add_argument("--ckpt", default="best", help="best, last, or a checkpoint file (default best)")
    parser.add_path_argument("-c", "--config", default="config", help="config folder")
    return parser


def load_run(config_dir: Path, experiment: str, number: int, ckpt: str = "best") -> TrainedRun:
    """Load version ``number`` of ``experiment`` from its results folder; UsageError saying what is missing."""
    version = Version(find_experiment(config_dir, experiment), number)
    paths = version.paths
    if not paths.config_file.is_file():
        raise UsageError(f"{version.label} has not been trained ({shown(paths.config_file)} is missing): "
                         f"python sh/run.py -e {experiment} -v {number}")
    try:
        checkpoint = Path(resolve_checkpoint(ckpt, paths, "test"))  # checked: a complete Lightning checkpoint
        state = load_checkpoint(checkpoint)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    try:
        config = yaml.safe_load(paths.config_file.read_text())
        config["model"]["class_path"], config["data"]["class_path"]
    except (yaml.YAMLError, TypeError, KeyError) as error:
        raise UsageError(f"{shown(paths.config_file)} is not the config.yaml of a run ({type(error).__name__}): "
                         f"train the version again (python sh/run.py -e {experiment} -v {number} --rerun)") from None
    model = import_class(config["model"]["class_path"]).load_from_checkpoint(checkpoint, map_location="cpu").eval()
    datamodule = import_class(config["data"]["class_path"])(**(config["data"].get("init_args") or {}))
    if type(datamodule).__qualname__ in state:
        datamodule.load_state_dict(state[type(datamodule).__qualname__])
    datamodule.prepare_data()
    datamodule.setup("test")
    return TrainedRun(paths, checkpoint, model, datamodule)
