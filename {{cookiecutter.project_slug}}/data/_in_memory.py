"""The fast path for image sets small enough to live in memory (MNIST, Fashion-MNIST, CIFAR-10, digits).

Each split is decoded once into one uint8 tensor, cached beside the raw files (``cache-train.pt``,
``cache-test.pt``, rebuilt when a raw file's size or modification time changes) and held in memory;
batches are cut from it by index, augmented, converted and normalised on whole tensors. There is no
per-sample Python or PIL work, so these loaders run in the training process (worker processes would
only add copies). Images of ``predict_dir`` are read file by file, like the ImageFolder path.

GPU-resident (``device_resident``): training on one CUDA device, the decoded splits are moved to it once, and
batches are cut, augmented and normalised there: no per-step copy from the host. Under DDP each rank holds only
its shard: before each pass over a split, the samples its DistributedSampler gives it for that pass (a new
share every epoch) go to its GPU in one copy, and its batches are cut there. The shuffled order and the
augmentation's random draws still come from the same seeded generators, so the batches are the very batches
of the host path (tests/test_data.py compares them with the device set to the CPU, on one device and on each
rank of two). It turns itself off when the data (under DDP, one rank's shard) would take more than
``GPU_MEMORY_SHARE`` of the GPU's free memory, and for image files (``predict_dir``, ImageFolder data).
"""
import os
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision import transforms

from contract import DatasetNotFoundError, project_path

from ._common import ResearchDataModule

GPU_MEMORY_SHARE = 0.25  # device_resident=None holds the data on the GPU only when it takes at most this share
CACHE_FORMAT = 1  # bump when the cache's content changes meaning: old caches are then rebuilt
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def file_stamps(paths: Sequence[Path]) -> list:
    """[name, size, modification time in ns] of each file: what a cache built from them depends on."""
    return [[path.name, stat.st_size, stat.st_mtime_ns] for path, stat in ((p, Path(p).stat()) for p in paths)]


def load_cached(cache_file: Path, sources: Sequence[Path],
                decode: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``decode()``'s (images, labels), read from ``cache_file`` while every source file is unchanged.

    The cache records the sources' names, sizes and modification times; when any differs (or the cache
    is missing or unreadable) the sources are decoded again and the cache is replaced by a rename, so
    concurrent processes (DDP ranks) never read a half-written cache. A cache that cannot be written is
    only a warning: the raw files are decoded again next time.
    """
    stamps = file_stamps(sources)
    try:
        cached = torch.load(cache_file, weights_only=True)
        if cached["format"] == CACHE_FORMAT and cached["sources"] == stamps:
            return cached["images"], cached["labels"]
    except Exception:  # noqa: BLE001 - a missing, corrupt or foreign cache file is rebuilt, whatever the error
        pass
    images, labels = decode()
    partial = cache_file.with_name(f".{cache_file.name}.{os.getpid()}")
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": CACHE_FORMAT, "sources": stamps, "images": images, "labels": labels}, partial)
        os.replace(partial, cache_file)
    except OSError as error:
        partial.unlink(missing_ok=True)
        warnings.warn(f"dataset cache {cache_file} not written ({error}); the raw files will be decoded again")
    return images, labels


def random_crop_and_flip(x: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Per-image random crop (after zero padding) and horizontal flip of a (N, C, H, W) batch, on its device; the
    random draws come from the CPU generator wherever the batch is, so every device gets the same crops."""
    n, _, h, w = x.shape
    device = x.device
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n, 1, 1)).to(device)
    dx = torch.randint(0, 2 * padding + 1, (n, 1, 1)).to(device)
    flip = (torch.rand(n) < 0.5).to(device)
    rows = (torch.arange(h, device=device).view(1, h, 1) + dy).expand(n, h, w)
    cols = (torch.arange(w, device=device).view(1, 1, w) + dx).expand(n, h, w)
    cols = torch.where(flip.view(n, 1, 1), cols.flip(-1), cols)
    batch = torch.arange(n, device=device).view(n, 1, 1).expand(n, h, w)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


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
        self.shard_device = None  # shard_on: the device a DDP rank holds its share of each pass on
        self.held = None  # the pass's share: (images, labels) on shard_device, each index's position in them (host)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device) -> "TensorImageDataset":
        """Hold the images and labels on ``device``: batches are then cut and normalised there."""
        self.images, self.labels = self.images.to(device), self.labels.to(device)
        self.scale, self.shift = self.scale.to(device), self.shift.to(device)
        return self

    def shard_on(self, device) -> "TensorImageDataset":
        """Keep the data in host memory and hold a pass's share of it on ``device`` while the pass runs (``hold``)."""
        self.shard_device = torch.device(device)
        self.shard_scaling = self.scale.to(device), self.shift.to(device)
        return self

    def hold(self, indices: Optional[Sequence[int]]) -> None:
        """Copy the images and labels at ``indices`` (a rank's share of the coming pass) to ``shard_device``, after
        freeing the share held before; None: only free it. A batch with an index outside the share held is cut
        from host memory."""
        self.held = None
        if indices is None:
            return
        unique = torch.as_tensor(sorted(set(indices)), dtype=torch.long)
        position = torch.full((len(self.labels),), -1, dtype=torch.long)
        position[unique] = torch.arange(len(unique))
        self.held = self.images[unique].to(self.shard_device), self.labels[unique].to(self.shard_device), position

    def __getitem__(self, index: int):
        x, y = self.__getitems__([index])
        return x[0], y[0]

    def __getitems__(self, indices):
        """A whole batch at once; DataLoader calls this instead of ``__getitem__`` per sample."""
        index = torch.as_tensor(indices, dtype=torch.long)
        images, labels, scale, shift = self.images, self.labels, self.scale, self.shift
        if self.held is not None:
            position = self.held[2][index]  # looked up on the host: an index outside the share costs no device sync
            if bool((position >= 0).all()):
                (images, labels, _), (scale, shift), index = self.held, self.shard_scaling, position
        index = index.to(images.device)
        x = images[index]
        if self.augment:
            x = random_crop_and_flip(x)
        return x.float().mul_(scale).sub_(shift), labels[index]


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


class ShardLoader(DataLoader):
    """The loader of a TensorImageDataset sharded over DDP ranks: at the first batch of each pass it has the
    dataset hold this rank's samples of the pass on the device. Lightning gives each rank a DistributedSampler,
    whose indices come from its own generator (seed + epoch), so reading them first changes no random draw of
    the pass; they are read when the pass starts, as DataLoader reads its sampler, because Lightning may create
    the iterator before it sets the epoch (when it resumes a run). Any other sampler (for example the wrapper
    Lightning uses for predict) is served from host memory, and the share is freed when the pass ends."""

    def __iter__(self):
        batches = super().__iter__()

        def held_batches():
            deterministic = type(self.sampler) is DistributedSampler
            self.dataset.hold(list(self.sampler) if deterministic else None)
            share = self.dataset.held
            try:
                yield from batches
            finally:  # the pass is over or abandoned: free its share, unless a later pass holds its own by now
                if self.dataset.held is share:
                    self.dataset.hold(None)

        return held_batches()


class InMemoryImageDataModule(ResearchDataModule):
    """Base datamodule for image sets small enough to live in memory as one uint8 tensor.

    Subclasses set ``num_classes``, ``input_shape``, ``mean`` and ``std`` and implement
    ``raw_files(train)`` (the files a split is decoded from; DatasetNotFoundError when missing) and
    ``decode(train, files)`` returning ``(images uint8 (N, C, H, W), labels int64 (N,))``. ``load_split``
    decodes once and caches the tensors in ``cache_dir`` (default: beside the raw files).
    """

    links = {{ '("input_shape",)' if cookiecutter.task == 'autoencoder' else '("num_classes", "input_shape")' }}  # contract point 1
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __init__(self, data_dir: Optional[str] = None, batch_size: int = 128, val_fraction: float = 0.1,
                 split_seed: int = 42, augment: bool = False, normalize: bool = True,
                 predict_dir: Optional[str] = None, fold: Optional[int] = None, n_folds: Optional[int] = None,
                 device_resident: Optional[bool] = None):
        super().__init__(data_dir=data_dir, batch_size=batch_size, val_fraction=val_fraction, split_seed=split_seed,
                         fold=fold, n_folds=n_folds)
        self.augment = augment
        self.normalize = normalize
        self.predict_dir = predict_dir
        self.device_resident = device_resident

    @property
    def pixel_scaling(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) batches are normalised with: the dataset's, or (0, 1) for pixels in [0, 1]."""
        return (self.mean, self.std) if self.normalize else ((0.0,) * len(self.mean), (1.0,) * len(self.std))

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

    @property
    def ranks(self) -> int:
        """The processes the data is shared out to: one per device under DDP."""
        return self.trainer.num_devices * self.trainer.num_nodes if self.trainer is not None else 1

    def _dataset(self, images, labels, device: Optional[torch.device], augment=False) -> TensorImageDataset:
        dataset = TensorImageDataset(images, labels, *self.pixel_scaling, augment=augment)
        if device is None:
            return dataset
        return dataset.to(device) if self.ranks == 1 else dataset.shard_on(device)

    def resident_device(self, nbytes: int) -> Optional[torch.device]:
        """The device to hold ``nbytes`` of decoded data on (under DDP, each rank its share; module docstring), or
        None for host memory."""
        trainer = self.trainer
        if self.device_resident is False or trainer is None:
            return None
        device = trainer.strategy.root_device
        if self.device_resident:
            return device  # asked for: on any device, the CPU included (the tests compare the batches there)
        if device.type != "cuda":
            return None
        free, _ = torch.cuda.mem_get_info(device)
        return device if nbytes / self.ranks <= GPU_MEMORY_SHARE * free else None

    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate") and self.train_set is None:
            images, labels = self.load_split(train=True)
            device = self.resident_device(images.nbytes + labels.nbytes)  # the training and validation sets together
            train_idx, val_idx = self.train_val_indices(len(labels), labels)
            self.train_set = self._dataset(images[train_idx], labels[train_idx], device, augment=self.augment)
            self.val_set = self._dataset(images[val_idx], labels[val_idx], device)
        if stage == "predict" and self.predict_dir:
            self.predict_set = ImageFilesDataset(self.predict_dir, self.input_shape, *self.pixel_scaling)
        elif stage in ("test", "predict") and self.test_set is None:
            images, labels = self.load_split(train=False)
            self.test_set = self._dataset(images, labels, self.resident_device(images.nbytes + labels.nbytes))

    def loader(self, dataset: Dataset, shuffle: bool = False) -> DataLoader:
        """Whole batches cut from memory in this process (no per-sample collate, no workers); image files of
        ``predict_dir`` through a plain loader.

        It is a plain sampler-based loader, so Lightning can swap in a DistributedSampler under DDP (a ShardLoader,
        when the data is device-resident, then holds each rank's share of every pass on its device).
        """
        if not isinstance(dataset, TensorImageDataset):
            return super().loader(dataset, shuffle)
        on_host = dataset.images.device.type == "cpu" and dataset.shard_device is None
        loader = DataLoader if dataset.shard_device is None else ShardLoader
        return loader(dataset, batch_size=self.batch_size, shuffle=shuffle, collate_fn=keep_batch,
                      pin_memory=self.on_gpu and on_host)
