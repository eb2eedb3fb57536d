"""Shared fixtures: fake data in this project's dataset format and CLI arguments pointing at it."""
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
sys.path.insert(0, str(PROJECT_ROOT / "sh"))  # the scripts and their library, as `python sh/<script>.py` has them
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fakes  # noqa: E402

DATASET = "{{ cookiecutter.dataset }}"


@pytest.fixture
def offline(monkeypatch):
    """Make torchvision's dataset downloads fail as they do without network."""
    from torchvision.datasets import cifar, mnist

    def no_network(*args, **kwargs):
        raise OSError("network unreachable (test)")

    for module in (mnist, cifar):
        monkeypatch.setattr(module, "download_and_extract_archive", no_network)


def fake_data(root: Path) -> Path:
    """``root`` holding a tiny fake copy of this project's dataset in its real format.

    For digits (bundled with scikit-learn) it is an empty folder: the decoded-tensor cache goes there.
    """
    if DATASET == "mnist":
        fakes.write_mnist(root, "MNIST")
    elif DATASET == "fashion_mnist":
        fakes.write_mnist(root, "FashionMNIST")
    elif DATASET == "cifar10":
        fakes.write_cifar10(root)
    elif DATASET == "imagefolder":
        fakes.write_imagefolder(root)
    else:
        root.mkdir(parents=True)
    return root


def quick_run_args(folder: Path, data_dir: Path) -> list:
    """main.py arguments for a quick, quiet run on the data in ``data_dir``, writing results under ``folder``."""
    return [
        f"--data.init_args.data_dir={data_dir}",
        f"--run.res_dir={folder / 'res'}",
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=3",
        "--trainer.limit_val_batches=2",
        "--trainer.limit_test_batches=2",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.strategy=auto",
        "--trainer.precision=32-true",
        "--model.init_args.backbone=mlp",  # these tests check what a run records; test_model.py tries every net
    ]


@pytest.fixture
def data_dir(tmp_path):
    """A folder of this test's own holding the fake dataset (free to change)."""
    return fake_data(tmp_path / "datasets")


@pytest.fixture
def fast_args(tmp_path, data_dir):
    """main.py arguments for a quick, quiet run writing results under tmp_path."""
    return quick_run_args(tmp_path, data_dir)


@pytest.fixture(scope="module")
def module_run(tmp_path_factory):
    """(folder, quick-run arguments) shared by the tests of one module: for a trained run several tests read."""
    folder = tmp_path_factory.mktemp("module_run")
    return folder, quick_run_args(folder, fake_data(folder / "datasets"))
