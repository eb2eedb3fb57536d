"""The datamodule reads this project's dataset in its real format and splits it reproducibly."""
import pytest
import torch
from conftest import DATASET

import data
from data._common import split_indices

DATAMODULE = getattr(data, "{{ cookiecutter.__dataset_class }}")


def make_datamodule(data_dir, **kwargs):
    if data_dir is not None:
        kwargs["data_dir"] = str(data_dir)
    return DATAMODULE(batch_size=16, **kwargs)


def test_batches_have_the_declared_shape_and_classes(data_dir):
    dm = make_datamodule(data_dir)
    dm.prepare_data()
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert tuple(x.shape[1:]) == tuple(dm.input_shape)
    assert x.dtype == torch.float32 and y.dtype == torch.long
    assert 0 <= int(y.min()) and int(y.max()) < dm.num_classes
    assert abs(float(x.mean())) < 3.0  # normalised, not raw 0..255


def test_validation_split_is_fixed_and_disjoint():
    train_a, val_a = split_indices(100, 0.2, seed=7)
    train_b, val_b = split_indices(100, 0.2, seed=7)
    assert torch.equal(train_a, train_b) and torch.equal(val_a, val_b)
    assert len(val_a) == 20 and not set(train_a.tolist()) & set(val_a.tolist())


def test_every_split_is_served(data_dir):
    dm = make_datamodule(data_dir)
    dm.prepare_data()
    for stage in ("fit", "test", "predict"):
        dm.setup(stage)
    assert len(dm.val_dataloader()) > 0
    assert len(dm.test_dataloader()) > 0
    assert len(dm.predict_dataloader()) > 0


@pytest.mark.skipif(DATASET == "digits", reason="digits ships with scikit-learn: never missing")
def test_missing_files_give_one_clear_error(tmp_path, offline):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(data.DatasetNotFoundError) as error:
        dm = make_datamodule(empty)
        dm.prepare_data()
        dm.setup("fit")
    message = str(error.value)
    assert str(empty) in message and "\n" not in message
