"""MNIST and Fashion-MNIST from their IDX files (torchvision's on-disk layout).

Files live in ``<data_dir>/MNIST/raw`` (or ``FashionMNIST/raw``): ``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (or the
``.gz`` archives). They are downloaded when missing and the network allows. The decoded tensors
are cached beside them (``cache-train.pt``, ``cache-test.pt``).
"""
import gzip
import math
import struct
from pathlib import Path
from typing import Optional

import torch

from contract import DatasetNotFoundError

from ._in_memory import InMemoryImageDataModule

SPLIT_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_FILES = SPLIT_FILES[True] + SPLIT_FILES[False]
IDX_UNSIGNED_BYTE = 0x08


def read_idx(path: Path) -> torch.Tensor:
    """Decode an IDX file of unsigned bytes (plain or ``.gz``) into a uint8 tensor of the shape it declares."""
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != IDX_UNSIGNED_BYTE:
        raise DatasetNotFoundError(f"{path} is not an IDX file of unsigned bytes (magic 0x0000080N)")
    header = 4 + 4 * data[3]
    shape = struct.unpack(f">{data[3]}I", data[4:header])
    if len(data) - header != math.prod(shape):
        raise DatasetNotFoundError(f"{path} holds {len(data) - header} bytes of data, its header declares {shape}")
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).view(*shape)


class MNISTDataModule(InMemoryImageDataModule):
    """Handwritten digits, 28x28 grey, 60k train (minus validation) / 10k test."""

    folder = torchvision_dataset = "MNIST"  # torchvision's dataset class and folder name
    num_classes = 10
    input_shape = (1, 28, 28)
    mean = (0.1307,)
    std = (0.3081,)

    def __init__(self, data_dir: Optional[str] = None, batch_size: int = 128, val_fraction: float = 0.1,
                 split_seed: int = 42, augment: bool = False,
                 normalize: bool = True, predict_dir: Optional[str] = None, fold: Optional[int] = None,
                 n_folds: Optional[int] = None, device_resident: Optional[bool] = None):
        """
        Args:
            data_dir: folder holding ``<Name>/raw`` (relative to the project root); None:
                $DATA_DIR when set (e.g. in .env), else data/datasets.
            batch_size: samples per batch.
            val_fraction: share of the training set kept for validation.
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

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / self.folder / "raw"

    def _file(self, name: str) -> Optional[Path]:
        """The IDX file ``name``, or its ``.gz`` archive when only that is there; None when neither is."""
        for path in (self.raw_dir / name, self.raw_dir / f"{name}.gz"):
            if path.is_file():
                return path
        return None

    def missing_files(self) -> list[str]:
        return [name for name in IDX_FILES if self._file(name) is None]

    def not_found(self, reason: str) -> DatasetNotFoundError:
        return DatasetNotFoundError(
            f"{self.folder} files not found in {self.raw_dir} and {reason}; "
            f"put {', '.join(IDX_FILES)} (or their .gz archives) there"
        )

    def download(self) -> None:
        from torchvision import datasets

        getattr(datasets, self.torchvision_dataset)(self.data_dir, train=True, download=True)

    def raw_files(self, train: bool) -> list[Path]:
        self.check_present()
        return [self._file(name) for name in SPLIT_FILES[train]]

    def decode(self, train: bool, files: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = (read_idx(path) for path in files)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetNotFoundError(f"{files[0]} and {files[1]} do not hold N images and N labels")
        return images.unsqueeze(1), labels.long()


class FashionMNISTDataModule(MNISTDataModule):
    """Zalando's clothing images in MNIST's format: 28x28 grey, 10 classes."""

    folder = torchvision_dataset = "FashionMNIST"
    mean = (0.2860,)
    std = (0.3530,)
