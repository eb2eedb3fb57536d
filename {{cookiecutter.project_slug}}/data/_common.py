"""Machinery shared by the datamodules: project paths, in-memory image sets, splits, loaders.

Small image sets (MNIST, Fashion-MNIST, CIFAR-10, digits) are decoded once into one uint8
tensor and cached beside the raw files; batches are cut from it by index, converted,
normalised and augmented on whole tensors. There is no per-sample Python or PIL work.
"""
import os
from pathlib import Path
from typing import Optional

import torch
from pytorch_lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class DatasetNotFoundError(RuntimeError):
    """The dataset files are missing and could not be downloaded; the message says where to put them."""


def project_path(path) -> Path:
    """Resolve ``path`` against the project root unless it is absolute."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def default_num_workers() -> int:
    """Loader workers for decoded-on-the-fly data: one per spare core, at most 8."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle 0..n-1 with a fixed generator and cut it into (train, val) index tensors."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(n * val_fraction))
    return order[n_val:], order[:n_val]


class TensorImageDataset(Dataset):
    """Images held as one uint8 tensor (N, C, H, W), served a whole batch at a time.

    Conversion to float, normalisation and (optional) augmentation run on the batch tensor.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std, augment: bool = False):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a uint8 (N, C, H, W) tensor, got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long()
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        x, y = self.__getitems__([index])
        return x[0], y[0]

    def __getitems__(self, indices):
        """A whole batch at once; DataLoader calls this instead of ``__getitem__`` per sample."""
        index = torch.as_tensor(indices)
        x = self.images[index].float().div_(255.0)
        if self.augment:
            x = random_crop_and_flip(x)
        return x.sub_(self.mean).div_(self.std), self.labels[index]


def random_crop_and_flip(x: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Per-image random crop (after zero padding) and horizontal flip of a (N, C, H, W) batch."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n, 1, 1))
    dx = torch.randint(0, 2 * padding + 1, (n, 1, 1))
    rows = (torch.arange(h).view(1, h, 1) + dy).expand(n, h, w)
    cols = (torch.arange(w).view(1, 1, w) + dx).expand(n, h, w)
    flip = torch.rand(n) < 0.5
    cols = torch.where(flip.view(n, 1, 1), cols.flip(-1), cols)
    batch = torch.arange(n).view(n, 1, 1).expand(n, h, w)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class ImageFilesDataset(Dataset):
    """Every image file under ``folder`` (recursively, sorted) for prediction: no labels.

    Each image is converted to ``input_shape`` (grey or RGB, resized to H x W) and normalised like the
    training data; ``sample_ids`` are the file paths relative to ``folder``.
    """

    def __init__(self, folder, input_shape, mean, std):
        folder = project_path(folder)
        if not folder.is_dir():
            raise DatasetNotFoundError(f"predict_dir {folder} is not a folder; point it at a folder of image files")
        self.files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise DatasetNotFoundError(f"predict_dir {folder} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.sample_ids = [p.relative_to(folder).as_posix() for p in self.files]
        channels, height, width = input_shape
        self.mode = {1: "L", 3: "RGB"}[channels]
        self.transform = transforms.Compose(
            [transforms.Resize((height, width)), transforms.ToTensor(), transforms.Normalize(mean, std)]
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image

        with Image.open(self.files[index]) as image:
            return self.transform(image.convert(self.mode))


def keep_batch(batch):
    """collate_fn for datasets whose ``__getitems__`` already returns a collated batch."""
    return batch


def batch_loader(dataset: TensorImageDataset, batch_size: int, shuffle: bool) -> DataLoader:
    """A DataLoader that cuts whole batches from an in-memory dataset (no per-sample collate).

    It is a plain sampler-based loader, so Lightning can swap in a DistributedSampler under DDP.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=keep_batch,
        pin_memory=torch.cuda.is_available(),
    )


class InMemoryImageDataModule(LightningDataModule):
    """Base datamodule for image sets small enough to live in memory as one uint8 tensor.

    Subclasses set ``num_classes``, ``input_shape``, ``mean`` and ``std`` and implement
    ``load_split(train)`` returning ``(images uint8 (N, C, H, W), labels int64 (N,))``.
    The validation set is carved from the training split with a fixed generator.
    """

    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __init__(self, batch_size: int = 128, val_fraction: float = 0.1, split_seed: int = 42, augment: bool = False,
                 predict_dir: Optional[str] = None):
        super().__init__()
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.augment = augment
        self.predict_dir = predict_dir
        self.train_set = self.val_set = self.test_set = self.predict_set = None

    def load_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _dataset(self, images, labels, augment=False) -> TensorImageDataset:
        return TensorImageDataset(images, labels, self.mean, self.std, augment=augment)

    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate") and self.train_set is None:
            images, labels = self.load_split(train=True)
            train_idx, val_idx = split_indices(len(labels), self.val_fraction, self.split_seed)
            self.train_set = self._dataset(images[train_idx], labels[train_idx], augment=self.augment)
            self.val_set = self._dataset(images[val_idx], labels[val_idx])
        if stage == "predict" and self.predict_dir:
            self.predict_set = ImageFilesDataset(self.predict_dir, self.input_shape, self.mean, self.std)
        elif stage in ("test", "predict") and self.test_set is None:
            self.test_set = self._dataset(*self.load_split(train=False))

    def train_dataloader(self) -> DataLoader:
        return batch_loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return batch_loader(self.val_set, self.batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return batch_loader(self.test_set, self.batch_size, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """The images of ``predict_dir`` when it is set, else the test split (sample ids: its indices)."""
        if self.predict_dir:
            return DataLoader(self.predict_set, batch_size=self.batch_size)
        return batch_loader(self.test_set, self.batch_size, shuffle=False)
