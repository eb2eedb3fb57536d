"""The small base class of this project's datamodules, which yours may subclass (or not: the research
contract in contract.py asks a datamodule only for ``links``).

``ResearchDataModule`` gives checked loader settings, a fixed train/validation split, the four loaders
(from ``train_set``, ``val_set``, ``test_set`` and ``predict_set``, which ``setup`` fills), and
download-or-say-where: ``prepare_data`` calls ``download()`` while ``missing_files()`` lists any, and
turns a failed download into one ``DatasetNotFoundError`` that says where to put the files.
"""
import contextlib
import io
import os
from typing import Optional

import torch
from pytorch_lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from contract import ConfigError, DatasetNotFoundError, project_path


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity, e.g. a SLURM allocation), not all of the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_num_workers(processes: int = 1) -> int:
    """Loader workers for decoded-on-the-fly data: the spare cores of each of ``processes`` (at most 8 each)."""
    return max(0, min(8, usable_cpus() // max(1, processes) - 1))


def data_root(data_dir: Optional[str], below: str = ""):
    """``data_dir`` (relative to the project); for None, $DATA_DIR (e.g. set in .env) or else data/datasets,
    with ``below`` under it."""
    if data_dir is not None:
        return project_path(data_dir)
    root = project_path(os.environ.get("DATA_DIR") or "data/datasets")
    return root / below if below else root


def fold_indices(n: int, fold: int, n_folds: int, seed: int, labels=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) indices for k-fold cross-validation: 0..n-1 dealt into ``n_folds`` disjoint folds by a
    fixed generator, stratified by ``labels`` when given (each class spread evenly over the folds); fold
    ``fold`` validates, the others train. The folds of one seed cover every sample once."""
    generator = torch.Generator().manual_seed(seed)
    if labels is None:
        order = torch.randperm(n, generator=generator)
    else:  # each class's samples shuffled, then dealt round-robin: a class spreads evenly over the folds
        labels = torch.as_tensor(labels)
        order = torch.cat([group[torch.randperm(len(group), generator=generator)]
                           for group in (torch.nonzero(labels == k).flatten() for k in torch.unique(labels))])
    assigned = torch.empty(n, dtype=torch.long)
    assigned[order] = torch.arange(n) % n_folds
    return torch.nonzero(assigned != fold).flatten(), torch.nonzero(assigned == fold).flatten()


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle 0..n-1 with a fixed generator and cut it into (train, val) index tensors."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(n * val_fraction))
    return order[n_val:], order[:n_val]


class ResearchDataModule(LightningDataModule):
    """Loader settings, a fixed validation split, the four loaders and download-or-say-where (module docstring)."""

    links: tuple = ()  # contract point 1: the attributes passed to the model's __init__
    data_subfolder = ""  # where under $DATA_DIR (or data/datasets) the data lives when data_dir is None

    def __init__(self, data_dir: Optional[str] = None, batch_size: int = 64, val_fraction: float = 0.1,
                 split_seed: int = 42, num_workers: Optional[int] = 0, fold: Optional[int] = None,
                 n_folds: Optional[int] = None):
        """
        Args:
            data_dir: folder holding the data (relative to the project folder); None: $DATA_DIR when set (e.g. in
                .env), else data/datasets.
            batch_size: samples per batch.
            val_fraction: share of the training data kept for validation.
            split_seed: seed of the fixed train/validation split.
            num_workers: loader processes; None: the spare CPU cores of each training process (at most 8).
            fold: with ``n_folds``, k-fold cross-validation: validate on this fold (0 .. n_folds-1) of a fixed split
                of the training data, instead of a ``val_fraction`` share (sh/hparams.py --folds writes them).
            n_folds: the number of folds.
        """
        super().__init__()
        if (fold is None) != (n_folds is None) or n_folds is not None and not (n_folds >= 2 and 0 <= fold < n_folds):
            raise ConfigError("data.init_args.fold and n_folds go together, with n_folds >= 2 and "
                              f"0 <= fold < n_folds; got fold {fold!r}, n_folds {n_folds!r}")
        self.fold, self.n_folds = fold, n_folds
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"data.init_args.batch_size must be a positive integer, got {batch_size!r}")
        if not 0.0 < val_fraction < 1.0:
            raise ConfigError(f"data.init_args.val_fraction must be between 0 and 1 (the share of the training "
                              f"data kept for validation), got {val_fraction!r}")
        self.data_dir = data_root(data_dir, self.data_subfolder)
        self.batch_size, self.val_fraction, self.split_seed = batch_size, val_fraction, split_seed
        self.num_workers = num_workers
        self.train_set = self.val_set = self.test_set = self.predict_set = None
        self.train_indices = self.val_indices = None  # which training samples train and validate (setup)

    def train_val_indices(self, n: int, labels=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(train, validation) indices of ``n`` training samples: fold ``fold`` of ``n_folds`` (stratified by
        ``labels`` when given), else a ``val_fraction`` share; both fixed by ``split_seed``. Kept as
        ``train_indices`` and ``val_indices``."""
        if self.n_folds is None:
            split = split_indices(n, self.val_fraction, self.split_seed)
        else:
            split = fold_indices(n, self.fold, self.n_folds, self.split_seed, labels)
        self.train_indices, self.val_indices = split
        return split

    # download-or-say-where

    def missing_files(self) -> list[str]:
        """Names of the data files that are not there yet (none: nothing to download)."""
        return []

    def download(self) -> None:
        """Fetch the missing files into ``data_dir`` (called by ``prepare_data`` on one process per machine)."""
        raise DatasetNotFoundError("this dataset cannot be downloaded")

    def not_found(self, reason: str) -> DatasetNotFoundError:
        """The error that says which files are missing, why, and where to put them."""
        return DatasetNotFoundError(f"data files {', '.join(self.missing_files())} not found in {self.data_dir} "
                                    f"and {reason}")

    def prepare_data(self) -> None:
        if not self.missing_files():
            return
        try:  # downloaders print one line per failed mirror: keep them for the error message only
            with contextlib.redirect_stdout(io.StringIO()):
                self.download()
        except Exception as error:  # noqa: BLE001 - any download failure means the same to the user
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise self.not_found(f"the download failed ({reason})") from error

    def check_present(self) -> None:
        """DatasetNotFoundError when files are still missing (``setup`` without ``prepare_data``)."""
        if self.missing_files():
            raise self.not_found("prepare_data() has not downloaded them")

    # loaders

    def loader(self, dataset: Dataset, shuffle: bool = False) -> DataLoader:
        """A DataLoader over ``dataset``; pinned memory when training on a GPU (Lightning's non_blocking copies)."""
        workers = self.num_workers
        if workers is None:
            workers = default_num_workers(self.trainer.num_devices if self.trainer is not None else 1)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, num_workers=workers,
                          persistent_workers=workers > 0, pin_memory=self.on_gpu)

    @property
    def on_gpu(self) -> bool:
        """Whether the attached trainer runs on a CUDA device: only then is pinned host memory worth it."""
        return self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self.loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        """``predict_set`` when setup made one (e.g. files of ``predict_dir``), else the test split."""
        return self.loader(self.predict_set if self.predict_set is not None else self.test_set)
