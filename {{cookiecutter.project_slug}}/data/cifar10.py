"""CIFAR-10 from the python pickle batches (``<data_dir>/cifar-10-batches-py``), downloaded when missing.

The decoded tensors are cached beside the batches (``cache-train.pt``, ``cache-test.pt``).
"""
import pickle
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from contract import DatasetNotFoundError

from ._in_memory import InMemoryImageDataModule

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)


def read_batches(files) -> tuple[torch.Tensor, torch.Tensor]:
    """Read CIFAR pickle batch files into (uint8 (N, 3, 32, 32), int64 (N,)) tensors."""
    images, labels = [], []
    for path in files:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(entry["labels"])
    return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long)


class CIFAR10DataModule(InMemoryImageDataModule):
    """32x32 colour images in 10 classes, 50k train (minus validation) / 10k test."""

    num_classes = 10
    input_shape = (3, 32, 32)
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)

    def __init__(self, data_dir: Optional[str] = None, batch_size: int = 128, val_fraction: float = 0.1,
                 split_seed: int = 42, augment: bool = True,
                 normalize: bool = True, predict_dir: Optional[str] = None, fold: Optional[int] = None,
                 n_folds: Optional[int] = None, device_resident: Optional[bool] = None):
        """
        Args:
            data_dir: folder holding ``cifar-10-batches-py`` (relative to the project root); None:
                $DATA_DIR when set (e.g. in .env), else data/datasets.
            batch_size: samples per batch.
            val_fraction: share of the training set kept for validation.
            split_seed: seed of the fixed train/validation split.
            augment: random crop (padding 4) and horizontal flip on training batches.
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

    @property
    def batch_dir(self):
        return self.data_dir / FOLDER

    def missing_files(self) -> list[str]:
        return [name for name in TRAIN_BATCHES + TEST_BATCHES if not (self.batch_dir / name).is_file()]

    def not_found(self, reason: str) -> DatasetNotFoundError:
        return DatasetNotFoundError(
            f"CIFAR-10 files not found in {self.batch_dir} and {reason}; put data_batch_1..5 and test_batch there "
            "(the python version, cifar-10-python.tar.gz, extracted)"
        )

    def download(self) -> None:
        from torchvision.datasets import CIFAR10

        CIFAR10(self.data_dir, train=True, download=True)

    def raw_files(self, train: bool) -> list[Path]:
        self.check_present()
        return [self.batch_dir / name for name in (TRAIN_BATCHES if train else TEST_BATCHES)]

    def decode(self, train: bool, files: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
        return read_batches(files)
