"""MNIST and Fashion-MNIST from their IDX files (torchvision's on-disk layout).

Files live in ``<data_dir>/MNIST/raw`` (or ``FashionMNIST/raw``): ``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (or the
``.gz`` archives). They are downloaded when missing and the network allows.
"""
import contextlib
import io
from typing import Optional

import torch
from torchvision import datasets

from ._common import DatasetNotFoundError, InMemoryImageDataModule, project_path

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class MNISTDataModule(InMemoryImageDataModule):
    """Handwritten digits, 28x28 grey, 60k train (minus validation) / 10k test."""

    torchvision_class = datasets.MNIST
    num_classes = 10
    input_shape = (1, 28, 28)
    mean = (0.1307,)
    std = (0.3081,)

    def __init__(self, data_dir: str = "data/datasets", batch_size: int = 128, val_fraction: float = 0.1,
                 split_seed: int = 42, augment: bool = False, predict_dir: Optional[str] = None):
        """
        Args:
            data_dir: folder holding ``<Name>/raw`` (relative paths are taken from the project root).
            batch_size: samples per batch.
            val_fraction: share of the training set kept for validation.
            split_seed: seed of the fixed train/validation split.
            augment: random crop and flip on training batches.
            predict_dir: folder of image files for ``main.py predict`` (default: the test split).
        """
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, split_seed=split_seed, augment=augment,
                         predict_dir=predict_dir)
        self.data_dir = project_path(data_dir)

    @property
    def raw_dir(self):
        return self.data_dir / self.torchvision_class.__name__ / "raw"

    def _not_found(self, reason: str) -> DatasetNotFoundError:
        return DatasetNotFoundError(
            f"{self.torchvision_class.__name__} files not found in {self.raw_dir} and {reason}; "
            f"put {', '.join(IDX_FILES)} (or their .gz archives) there"
        )

    def prepare_data(self) -> None:
        try:
            self.torchvision_class(self.data_dir, train=True, download=False)
            return
        except RuntimeError:
            pass
        try:  # torchvision prints one line per failed mirror: keep them for the error message only
            with contextlib.redirect_stdout(io.StringIO()):
                for train in (True, False):
                    self.torchvision_class(self.data_dir, train=train, download=True)
        except Exception as error:  # noqa: BLE001 - any download failure means the same to the user
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise self._not_found(f"the download failed ({reason})") from error

    def load_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            dataset = self.torchvision_class(self.data_dir, train=train, download=False)
        except RuntimeError as error:
            raise self._not_found("prepare_data() has not downloaded them") from error
        return dataset.data.unsqueeze(1).contiguous(), dataset.targets.long()


class FashionMNISTDataModule(MNISTDataModule):
    """Zalando's clothing images in MNIST's format: 28x28 grey, 10 classes."""

    torchvision_class = datasets.FashionMNIST
    mean = (0.2860,)
    std = (0.3530,)
