"""Machinery shared by the datamodules: in-memory image sets, splits, loaders.

Small image sets (MNIST, Fashion-MNIST, CIFAR-10, digits) are decoded once into one uint8
tensor, cached beside the raw files (``cache-train.pt``, ``cache-test.pt``, rebuilt when a raw
file's size or modification time changes) and held in memory; batches are cut from it by index,
augmented, converted and normalised on whole tensors. There is no per-sample Python or PIL work,
so these loaders run in the main process (worker processes would only add copies); ImageFolder
data is decoded by loader worker processes instead.
"""
import contextlib
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from pytorch_lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from runtime.checks import ConfigError
from runtime.paths import project_path

CACHE_FORMAT = 1  # bump when the cache's content changes meaning: old caches are then rebuilt


class DatasetNotFoundError(RuntimeError):
    """The dataset files are missing and could not be downloaded; the message says where to put them."""


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity, e.g. a SLURM allocation), not all of the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_num_workers(processes: int = 1) -> int:
    """Loader workers for decoded-on-the-fly data: the spare cores of each of ``processes`` (at most 8 each)."""
    return max(0, min(8, usable_cpus() // max(1, processes) - 1))


def trains_on_gpu(trainer) -> bool:
    """True when the attached Trainer runs on a CUDA device: only then is pinned host memory worth it."""
    return trainer is not None and trainer.strategy.root_device.type == "cuda"


def file_stamps(paths: Sequence[Path]) -> list:
    """[name, size, modification time in ns] of each file: what a cache built from them depends on."""
    return [[path.name, stat.st_size, stat.st_mtime_ns] for path, stat in ((p, Path(p).stat()) for p in paths)]


def _write_cache(cache_file: Path, payload: dict) -> None:
    """torch.save ``payload`` to a temporary file beside ``cache_file``, then rename it over the cache."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{cache_file.name}.", dir=cache_file.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(payload, f)
            os.replace(tmp, cache_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as error:
        warnings.warn(f"dataset cache {cache_file} not written ({error}); the raw files will be decoded again")


def load_cached(cache_file: Path, sources: Sequence[Path],
                decode: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``decode()``'s (images, labels), read from ``cache_file`` while every source file is unchanged.

    The cache records the sources' names, sizes and modification times; when any differs (or the
    cache is missing or unreadable) the sources are decoded again and the cache is replaced atomically,
    so concurrent processes (DDP ranks) never read a half-written cache.
    """
    stamps = file_stamps(sources)
    try:
        cached = torch.load(cache_file, weights_only=True)
        if cached["format"] == CACHE_FORMAT and cached["sources"] == stamps:
            return cached["images"], cached["labels"]
    except Exception:  # noqa: BLE001 - a missing, corrupt or foreign cache file is rebuilt, whatever the error
        pass
    images, labels = decode()
    _write_cache(cache_file, {"format": CACHE_FORMAT, "sources": stamps, "images": images, "labels": labels})
    return images, labels


def check_loader_settings(batch_size: int, val_fraction: float) -> None:
    """ConfigError (one line from main.py) for settings no loader or split could work with."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"data.init_args.batch_size must be a positive integer, got {batch_size!r}")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"data.init_args.val_fraction must be between 0 and 1 (the share of the training "
                          f"data kept for validation), got {val_fraction!r}")


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle 0..n-1 with a fixed generator and cut it into (train, val) index tensors."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(n * val_fraction))
    return order[n_val:], order[:n_val]


class TensorImageDataset(Dataset):
    """Images held as one uint8 tensor (N, C, H, W), served a whole batch at a time.

    Augmentation runs on the uint8 batch (zero padding is black, as with torchvision's RandomCrop on
    images); conversion to float and normalisation, ``(x / 255 - mean) / std`` as torchvision's
    ToTensor + Normalize, are one fused multiply-subtract on the batch.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std, augment: bool = False):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a uint8 (N, C, H, W) tensor, got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long()
        std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.scale = 1.0 / (255.0 * std)
        self.shift = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) / std
        self.augment = augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        x, y = self.__getitems__([index])
        return x[0], y[0]

    def __getitems__(self, indices):
        """A whole batch at once; DataLoader calls this instead of ``__getitem__`` per sample."""
        index = torch.as_tensor(indices)
        x = self.images[index]
        if self.augment:
            x = random_crop_and_flip(x)
        return x.float().mul_(self.scale).sub_(self.shift), self.labels[index]


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
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise DatasetNotFoundError(f"predict_dir {folder} holds no image files ({suffixes})")
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


def batch_loader(dataset: TensorImageDataset, batch_size: int, shuffle: bool, pin_memory: bool = False) -> DataLoader:
    """A DataLoader that cuts whole batches from an in-memory dataset (no per-sample collate).

    It is a plain sampler-based loader, so Lightning can swap in a DistributedSampler under DDP.
    No worker processes: slicing a batch from memory is far cheaper than sending it between processes.
    ``pin_memory`` (page-locked batches: Lightning's ``non_blocking`` copy to the GPU then overlaps compute)
    only helps on a GPU.
    """
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=keep_batch, pin_memory=pin_memory)


class InMemoryImageDataModule(LightningDataModule):
    """Base datamodule for image sets small enough to live in memory as one uint8 tensor.

    Subclasses set ``num_classes``, ``input_shape``, ``mean`` and ``std`` and implement
    ``raw_files(train)`` (the files a split is decoded from; DatasetNotFoundError when missing) and
    ``decode(train, files)`` returning ``(images uint8 (N, C, H, W), labels int64 (N,))``. ``load_split``
    decodes once and caches the tensors in ``cache_dir`` (default: beside the raw files).
    The validation set is carved from the training split with a fixed generator.
    """

    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __init__(self, batch_size: int = 128, val_fraction: float = 0.1, split_seed: int = 42, augment: bool = False,
                 predict_dir: Optional[str] = None):
        super().__init__()
        check_loader_settings(batch_size, val_fraction)
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.augment = augment
        self.predict_dir = predict_dir
        self.train_set = self.val_set = self.test_set = self.predict_set = None

    def raw_files(self, train: bool) -> list[Path]:
        raise NotImplementedError

    def decode(self, train: bool, files: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def cache_dir(self, files: list[Path]) -> Path:
        return files[0].parent

    def load_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(images uint8 (N, C, H, W), labels int64 (N,)) of the train or test split, from the cache when fresh."""
        files = self.raw_files(train)
        cache_file = self.cache_dir(files) / f"cache-{'train' if train else 'test'}.pt"
        return load_cached(cache_file, files, lambda: self.decode(train, files))

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

    def _loader(self, dataset: TensorImageDataset, shuffle: bool = False) -> DataLoader:
        return batch_loader(dataset, self.batch_size, shuffle, pin_memory=trains_on_gpu(self.trainer))

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        """The images of ``predict_dir`` when it is set, else the test split (sample ids: its indices)."""
        if self.predict_dir:
            return DataLoader(self.predict_set, batch_size=self.batch_size)
        return self._loader(self.test_set)


class DownloadableImageDataModule(InMemoryImageDataModule):
    """An in-memory set that torchvision downloads: ``prepare_data`` fetches the files once (Lightning calls
    it on one process per machine); without network, one DatasetNotFoundError says where to put them.

    Subclasses set ``torchvision_dataset`` (the class of ``torchvision.datasets`` that downloads the
    files) and implement ``missing_files()`` and ``not_found(reason)``.
    """

    torchvision_dataset: str

    def missing_files(self) -> list[str]:
        raise NotImplementedError

    def not_found(self, reason: str) -> DatasetNotFoundError:
        raise NotImplementedError

    def prepare_data(self) -> None:
        if not self.missing_files():
            return
        from torchvision import datasets

        try:  # torchvision prints one line per failed mirror: keep them for the error message only
            with contextlib.redirect_stdout(io.StringIO()):
                getattr(datasets, self.torchvision_dataset)(self.data_dir, train=True, download=True)
        except Exception as error:  # noqa: BLE001 - any download failure means the same to the user
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise self.not_found(f"the download failed ({reason})") from error

    def check_downloaded(self) -> None:
        if self.missing_files():
            raise self.not_found("prepare_data() has not downloaded them")
