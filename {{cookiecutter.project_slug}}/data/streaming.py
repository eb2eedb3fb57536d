"""Data bigger than memory, streamed from litdata's optimized chunks: shuffled, resumable mid-epoch, split between
DDP ranks.

``sh/optimize_data.py`` writes a datamodule's splits once into ``<input_dir>/{train,val,test}/`` (chunk files and
their ``index.json``) and ``<input_dir>/meta.json`` (what the model is built from). ``StreamingDataModule`` reads
them from this disk or from a bucket (``s3://bucket/prefix``), holding only the chunks in use; a bucket's chunks
are cached in ``cache_dir``, at most ``max_cache_size`` of them. Stack ``config/switches/streaming.yaml`` onto a
run to train on them. Needs the streaming extra: pip install litdata.

The chunks hold each sample once, as the datamodule gave it without augmentation: streamed training is not
augmented. Shuffling is litdata's: the chunks in a random order, the samples of a few chunks at a time shuffled
together. Under DDP each rank streams its own share of the chunks, the shares cut to an equal number of batches (as a
DistributedSampler with drop_last drops the remainder). The loader's position is saved in every checkpoint, so
a resumed fit goes on with the samples the killed one had not reached. ``main.py predict`` reads the test split in
the order it was written, so predictions.csv names each sample by its index in the datamodule it came from.
"""
import importlib.util
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Optional

from pytorch_lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from contract import ConfigError, DatasetNotFoundError, project_path

from ._common import default_num_workers
from .{{ cookiecutter.__dataset_module }} import {{ cookiecutter.__dataset_class }}

# litdata gives each loader worker its own chunks, so the length Lightning warns about is right.
warnings.filterwarnings("ignore", message=r"Your `IterableDataset` has `__len__` defined")

META_FILE = "meta.json"
SPLITS = ("train", "val", "test")
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}


def is_remote(path: str) -> bool:
    """Whether ``path`` names a bucket (``s3://``, ``gs://`` ...) rather than a folder of this machine."""
    return "://" in path and not path.startswith("file://")


def resolved_dir(input_dir: str) -> str:
    """``input_dir`` as litdata takes it: a bucket as given; a folder from the project, with ``local:`` kept (a
    shared filesystem's folder, whose chunks are copied into the cache as a bucket's are)."""
    if is_remote(input_dir):
        return input_dir
    if input_dir.startswith("local:"):
        return "local:" + str(project_path(input_dir[len("local:"):]))
    return str(project_path(input_dir))


def as_tuples(value):
    """JSON's lists back as the tuples a datamodule's links hold (``input_shape``)."""
    return tuple(as_tuples(item) for item in value) if isinstance(value, list) else value


def read_meta(input_dir: str, storage_options: dict) -> dict:
    """``<input_dir>/meta.json`` (``input_dir`` resolved), read from this disk or from the bucket; one
    DatasetNotFoundError when it is not there or the bucket does not answer (in seconds, not after litdata's
    thousand retries)."""
    if not is_remote(input_dir):
        meta_file = Path(input_dir.removeprefix("local:")) / META_FILE
        if not meta_file.is_file():
            raise DatasetNotFoundError(f"no optimized dataset in {meta_file.parent} (no {META_FILE}): write it with  "
                                       f"python sh/optimize_data.py -c <config> --output {meta_file.parent}")
        return json.loads(meta_file.read_text())
    copy_it = f"copy there a folder sh/optimize_data.py wrote (aws s3 sync data/streaming/<name> {input_dir})"
    with tempfile.TemporaryDirectory() as scratch:
        local = os.path.join(scratch, META_FILE)
        try:
            fetch(f"{input_dir}/{META_FILE}", local, scratch, storage_options)
        except Exception as error:  # noqa: BLE001 - a missing key, refused credentials, no answer: the same to the user
            if not missing_key(error):
                reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                raise DatasetNotFoundError(f"could not read {input_dir}/{META_FILE} ({reason})") from None
        if not os.path.isfile(local):
            raise DatasetNotFoundError(f"no optimized dataset at {input_dir} (no {META_FILE}): {copy_it}")
        return json.loads(Path(local).read_text())


def fetch(url: str, local: str, scratch: str, storage_options: dict) -> None:
    """Download one file of a bucket: S3 through boto3 with few retries, other stores through litdata."""
    from urllib.parse import urlparse

    if url.startswith("s3://"):
        import boto3
        from botocore.config import Config

        quick = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"})
        target = urlparse(url)
        boto3.client("s3", **{"config": quick, **storage_options}).download_file(
            target.netloc, target.path.lstrip("/"), local)
        return
    from litdata.streaming.downloader import get_downloader

    get_downloader(url.rsplit("/", 1)[0], scratch, [], storage_options).download_file(url, local)


def missing_key(error: Exception) -> bool:
    """Whether ``error`` says the file is not in the bucket (as opposed to a bucket that cannot be read)."""
    code = str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
    return isinstance(error, FileNotFoundError) or code in ("404", "NoSuchKey")


class StreamingDataModule(LightningDataModule):
    """The train, val and test splits ``sh/optimize_data.py`` wrote, streamed (module docstring)."""

    links = {{ cookiecutter.__dataset_class }}.links  # contract point 1: their values come from meta.json

    def __init__(self, input_dir: str = "data/streaming/{{ cookiecutter.__dataset }}", batch_size: int = 64,
                 num_workers: Optional[int] = None, shuffle_seed: int = 42, max_cache_size: str = "25GB",
                 cache_dir: Optional[str] = None, storage_options: Optional[dict] = None):
        """
        Args:
            input_dir: the folder sh/optimize_data.py wrote (relative to the project), read in place; ``local:<folder>``
                for one on a shared filesystem, its chunks copied into ``cache_dir`` as they are needed; or a bucket
                holding a copy of it (``s3://bucket/prefix``; credentials and endpoint from the usual AWS
                variables, or ``storage_options``).
            batch_size: samples per batch.
            num_workers: loader processes streaming the chunks; None: the spare CPU cores of each training process
                (at most 8).
            shuffle_seed: seed of the training order (the same seed, the same order; each epoch another one).
            max_cache_size: the most local disk the cached chunks (of a bucket or ``local:`` folder) take at once
                (e.g. "25GB"); chunks already read are deleted as new ones arrive.
            cache_dir: where those chunks are cached; None: litdata's default cache folder.
            storage_options: passed to the bucket's client (e.g. ``{"endpoint_url": "https://minio.lab:9000"}``;
                litdata reads chunks over https only).
        """
        super().__init__()
        if importlib.util.find_spec("litdata") is None:
            raise ConfigError("data.StreamingDataModule needs litdata (the streaming extra): pip install litdata")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"data.init_args.batch_size must be a positive integer, got {batch_size!r}")
        self.input_dir = resolved_dir(input_dir)
        self.batch_size, self.num_workers, self.shuffle_seed = batch_size, num_workers, shuffle_seed
        self.max_cache_size, self.storage_options = max_cache_size, dict(storage_options or {})
        self.cache_dir = None if cache_dir is None else str(project_path(cache_dir))
        meta = read_meta(self.input_dir, self.storage_options)
        missing = [name for name in self.links if name not in meta.get("links", {})]
        if missing:
            raise ConfigError(f"{self.input_dir}/{META_FILE} holds no {', '.join(missing)} (written for another "
                              f"datamodule?): write it again with sh/optimize_data.py")
        for name in self.links:
            setattr(self, name, as_tuples(meta["links"][name]))
        self.classes = meta.get("classes")
        self.sizes = meta.get("sizes", {})
        self.datasets = {}

    def split(self, name: str):
        """The StreamingDataset of split ``name`` (train: shuffled)."""
        from litdata import StreamingDataset

        if name not in self.datasets:
            if not self.sizes.get(name):
                raise ConfigError(f"{self.input_dir} holds no {name} split (sh/optimize_data.py wrote "
                                  f"{', '.join(s for s in SPLITS if self.sizes.get(s)) or 'none'})")
            self.datasets[name] = StreamingDataset(
                f"{self.input_dir}/{name}", cache_dir=self.cache_dir, shuffle=name == "train", seed=self.shuffle_seed,
                max_cache_size=self.max_cache_size, storage_options=self.storage_options)
        return self.datasets[name]

    def setup(self, stage: str) -> None:
        for name in STAGE_SPLITS.get(stage, ()):
            self.split(name)

    def loader(self, name: str):
        """A StreamingDataLoader over split ``name``: its position goes into every checkpoint Lightning saves."""
        from litdata import StreamingDataLoader

        workers = self.num_workers
        if workers is None:
            workers = default_num_workers(self.trainer.num_devices if self.trainer is not None else 1)
        on_gpu = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        return StreamingDataLoader(self.split(name), batch_size=self.batch_size, num_workers=workers,
                                   persistent_workers=workers > 0, pin_memory=on_gpu)

    def train_dataloader(self):
        return self.loader("train")

    def val_dataloader(self):
        return self.loader("val")

    def test_dataloader(self):
        return self.loader("test")

    def predict_dataloader(self):
        """The test split read in order by index, so that predictions.csv names each sample by its index."""
        return DataLoader(IndexedSplit(self.split("test")), batch_size=self.batch_size)


class IndexedSplit(Dataset):
    """A StreamingDataset read by index, as a map-style dataset (its samples in the order written)."""

    def __init__(self, streaming):
        self.streaming = streaming

    def __len__(self) -> int:
        return len(self.streaming)

    def __getitem__(self, index: int):
        return self.streaming[index]
