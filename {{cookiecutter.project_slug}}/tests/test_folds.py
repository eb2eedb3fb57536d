"""k-fold cross-validation: the datamodule validates on fold i of a fixed split of the training data, the K
folds are disjoint and cover it, and classes spread evenly over them (sh/hparams.py --folds writes the versions)."""
from collections import Counter

import pytest
import torch

from conftest import data_args, datamodule_class, fake_data
from contract import ConfigError
from data._common import fold_indices

K = 3


def datamodule(data_dir, **kwargs):
    """This project's datamodule on the fake data, as main.py would build it from data_args."""
    given = dict(arg[len("--data.init_args."):].split("=", 1) for arg in data_args(data_dir))
    return datamodule_class()(**given, batch_size=8, **kwargs)


def test_fold_indices_are_disjoint_cover_everything_and_spread_each_class_evenly():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 7)
    folds = [fold_indices(len(labels), i, 5, seed=42, labels=labels) for i in range(5)]
    validation = [set(val.tolist()) for _, val in folds]
    assert sum(map(len, validation)) == len(labels) and set().union(*validation) == set(range(len(labels)))
    for train, val in folds:
        assert not set(train.tolist()) & set(val.tolist()) and len(train) + len(val) == len(labels)
        counts = Counter(labels[val].tolist())
        assert (counts[0], counts[1]) == (10, 6) and counts[2] in (1, 2)  # each class split as evenly as it goes
    assert [v.tolist() for _, v in folds] == [fold_indices(len(labels), i, 5, 42, labels)[1].tolist() for i in range(5)]
    assert fold_indices(87, 0, 5, seed=7)[1].tolist() != folds[0][1].tolist()  # another seed, another split


def test_the_datamodules_folds_are_disjoint_and_cover_its_training_data(tmp_path):
    data_dir = fake_data(tmp_path / "datasets")
    seen, sizes = [], set()
    for fold in range(K):
        dm = datamodule(data_dir, fold=fold, n_folds=K)
        dm.prepare_data()
        dm.setup("fit")
        train, val = set(dm.train_indices.tolist()), set(dm.val_indices.tolist())
        assert not train & val and len(dm.val_dataloader().dataset) == len(val)
        seen.append(val)
        sizes.add(len(train) + len(val))
    assert len(sizes) == 1, "every fold splits the same training data"
    assert not any(a & b for i, a in enumerate(seen) for b in seen[i + 1:])
    assert set().union(*seen) == set(range(sizes.pop()))


@pytest.mark.parametrize("fold, n_folds", [(3, 3), (0, 1), (-1, 3), (0, None), (None, 3)])
def test_a_fold_outside_its_folds_is_refused(tmp_path, fold, n_folds):
    with pytest.raises(ConfigError, match="fold and n_folds go together"):
        datamodule(fake_data(tmp_path / "datasets"), fold=fold, n_folds=n_folds)
