"""scikit-learn's bundled handwritten digits: 1,797 real 8x8 images, no download needed.

The decoded tensors are cached in ``<data_dir>/digits`` (rebuilt when scikit-learn's digits file
changes), so later runs do not even import scikit-learn.
"""
import importlib.util
from pathlib import Path
from typing import Optional

import torch

from contract import DatasetNotFoundError

from ._common import split_indices
from ._in_memory import InMemoryImageDataModule

TEST_FRACTION = 0.2
TEST_SPLIT_SEED = 0  # fixed: the test set never changes with the user's split_seed


def sklearn_digits_file() -> Path:
    """scikit-learn's ``datasets/data/digits.csv.gz`` (what ``load_digits`` reads), found without importing it."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotFoundError("the digits dataset ships with scikit-learn, which is not installed: "
                                   "pip install scikit-learn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise DatasetNotFoundError(f"scikit-learn's digits file {path} is missing: reinstall scikit-learn")
    return path


class DigitsDataModule(InMemoryImageDataModule):
    """8x8 grey digits (16 grey levels scaled to 0..255); a fixed 20 % is held out for test."""

    num_classes = 10
    input_shape = (1, 8, 8)
    mean = (0.3051,)
    std = (0.3784,)

    def __init__(self, data_dir: Optional[str] = None, batch_size: int = 64, val_fraction: float = 0.1,
                 split_seed: int = 42, augment: bool = False,
                 normalize: bool = True, predict_dir: Optional[str] = None, fold: Optional[int] = None,
                 n_folds: Optional[int] = None, device_resident: Optional[bool] = None):
        """
        Args:
            data_dir: folder for the decoded-tensor cache (``<data_dir>/digits``; relative to the project root);
                None: $DATA_DIR when set (e.g. in .env), else data/datasets.
            batch_size: samples per batch.
            val_fraction: share of the training part kept for validation.
            split_seed: seed of the fixed train/validation split.
            augment: random crop and flip on training batches.
            normalize: scale pixels to the dataset's mean and std (else to [0, 1], as an autoencoder wants).
            predict_dir: folder of image files for ``main.py predict`` (default: the test split).
            fold: with ``n_folds``, validate on this fold of a fixed k-fold split of the training data.
            n_folds: the number of folds (sh/hparams.py --folds writes both).
            device_resident: hold the decoded data on the training GPU and cut batches there (no per-step
                copy; the same batches; under DDP each rank holds its share of each pass); None: when training
                on CUDA devices and the data (a rank's share) fits in a quarter of the free memory.
        """
        super().__init__(data_dir=data_dir, batch_size=batch_size, val_fraction=val_fraction, split_seed=split_seed,
                         augment=augment, normalize=normalize, predict_dir=predict_dir, fold=fold, n_folds=n_folds,
                         device_resident=device_resident)

    def raw_files(self, train: bool) -> list[Path]:
        return [sklearn_digits_file()]

    def cache_dir(self, files: list[Path]) -> Path:
        return self.data_dir / "digits"

    def decode(self, train: bool, files: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.from_numpy(digits.images * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)
        labels = torch.from_numpy(digits.target).long()
        train_idx, test_idx = split_indices(len(labels), TEST_FRACTION, TEST_SPLIT_SEED)
        index = train_idx if train else test_idx
        return images[index].contiguous(), labels[index]
