"""Shared fixtures: fake data in this project's dataset format and CLI arguments pointing at it."""
import sys
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
sys.path.insert(0, str(PROJECT_ROOT / "sh"))  # the scripts and their library, as `python sh/<script>.py` has them
sys.path.insert(0, str(Path(__file__).resolve().parent))


TASK = "{{ cookiecutter.task }}"
DATASET = "{{ cookiecutter.__dataset }}"
RUN_SETTINGS = yaml.safe_load((PROJECT_ROOT / "config" / "template.yaml").read_text())["run"]
MONITOR = RUN_SETTINGS["monitor"]  # the metric that judges a run (val/acc, val/loss, ...)
TEST_METRIC = "test/" + MONITOR.split("/", 1)[1]  # its score in the test after fit
MODEL_CLASS, DATAMODULE_CLASS = "{{ cookiecutter.__model_class }}", "{{ cookiecutter.__dataset_class }}"


def model_class():
    """The project's LightningModule class (imported on use: torch loads slowly)."""
    import model

    return getattr(model, MODEL_CLASS)


def datamodule_class():
    """The project's LightningDataModule class."""
    import data

    return getattr(data, DATAMODULE_CLASS)


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

    For the sets bundled with scikit-learn it is an empty folder (the digits' decoded-tensor cache goes there).
    """
{%- if cookiecutter.__dataset not in ['digits', 'breast_cancer', 'wine', 'diabetes'] %}
    import fakes
{% endif %}
{%- if cookiecutter.__dataset == 'mnist' %}
    fakes.write_mnist(root, "MNIST")
{%- elif cookiecutter.__dataset == 'fashion_mnist' %}
    fakes.write_mnist(root, "FashionMNIST")
{%- elif cookiecutter.__dataset == 'cifar10' %}
    fakes.write_cifar10(root)
{%- elif cookiecutter.__dataset == 'imagefolder' %}
    fakes.write_imagefolder(root)
{%- elif cookiecutter.task == 'tabular' and cookiecutter.__dataset == 'csv' %}
    fakes.write_table(root / "table.csv")
{%- elif cookiecutter.task == 'text_classification' %}
    fakes.write_texts(root, "{{ cookiecutter.__dataset }}")
{%- else %}
    root.mkdir(parents=True)
{%- endif %}
    return root


def data_args(data_dir: Path) -> list:
    """main.py arguments that point the datamodule at the data in ``data_dir``{% if cookiecutter.task == 'tabular' and cookiecutter.__dataset != 'csv' %} (a bundled set needs none){% endif %}."""
{%- if cookiecutter.task in ['image_classification', 'autoencoder'] %}
    return [f"--data.init_args.data_dir={data_dir}"]
{%- elif cookiecutter.task == 'tabular' and cookiecutter.__dataset == 'csv' %}
    return [f"--data.init_args.source={data_dir / 'table.csv'}"]
{%- elif cookiecutter.task == 'tabular' %}
    return []
{%- else %}
    return [f"--data.init_args.train_file={data_dir / 'train.{{ cookiecutter.__dataset }}'}",
            f"--data.init_args.test_file={data_dir / 'test.{{ cookiecutter.__dataset }}'}"]
{%- endif %}


def quick_run_args(folder: Path, data_dir: Path) -> list:
    """main.py arguments for a quick, quiet run on the data in ``data_dir``, writing results under ``folder``."""
    return [
        *data_args(data_dir),
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
{%- if cookiecutter.task in ['image_classification', 'autoencoder'] %}
        "--model.init_args.backbone=mlp",  # these tests check what a run records; test_model.py tries every net
{%- elif cookiecutter.task == 'text_classification' %}
        "--model.init_args.backbone=bag",  # these tests check what a run records; test_text.py tries every net
{%- endif %}
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
