"""Your own images, one folder per class (torchvision's ImageFolder layout).

    <data_dir>/train/<class>/<image>     required
    <data_dir>/val/<class>/<image>       optional: else carved from train with a fixed generator
    <data_dir>/test/<class>/<image>      optional: else the validation set is used for test

Images are decoded by loader workers (this is the path for data too large to hold in memory).
"""
from pathlib import Path
from typing import Optional

from torch.utils.data import Subset
from torchvision import datasets, transforms

from contract import ConfigError, DatasetNotFoundError

from ._common import ResearchDataModule
from ._in_memory import ImageFilesDataset

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ONE_FOLDER_PER_CLASS = "put one sub-folder of images per class there"


def class_names(folder: Path) -> list[str]:
    """Class folder names of an ImageFolder split, or a DatasetNotFoundError saying what is wrong."""
    if not folder.is_dir():
        raise DatasetNotFoundError(f"image folder {folder} does not exist; {ONE_FOLDER_PER_CLASS}")
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DatasetNotFoundError(f"image folder {folder} has no class sub-folders; {ONE_FOLDER_PER_CLASS}")
    return names


class ImageFolderDataModule(ResearchDataModule):
    """RGB images resized to ``image_size``, classes from the sub-folder names of ``train/``."""

    data_subfolder = "images"
    links = {{ '("input_shape",)' if cookiecutter.task == 'autoencoder' else '("num_classes", "input_shape")' }}  # contract point 1

    def __init__(self, data_dir: Optional[str] = None, image_size: int = 64, batch_size: int = 64,
                 val_fraction: float = 0.1, split_seed: int = 42, num_workers: Optional[int] = None,
                 augment: bool = True, normalize: bool = True, predict_dir: Optional[str] = None,
                 fold: Optional[int] = None, n_folds: Optional[int] = None):
        """
        Args:
            data_dir: folder holding ``train/`` (and optional ``val/``, ``test/``); relative to the project root;
                None: ``images/`` under $DATA_DIR when set (e.g. in .env), else data/datasets/images.
            image_size: images are resized to image_size x image_size.
            batch_size: samples per batch.
            val_fraction: share of ``train/`` kept for validation when there is no ``val/``.
            split_seed: seed of that split.
            num_workers: decoding processes per training process; None: the spare CPU cores this process may
                use, shared between the training processes of this machine (at most 8 each).
            augment: random horizontal flip on training images.
            normalize: scale pixels to ImageNet's mean and std (else to [0, 1], as an autoencoder wants).
            predict_dir: folder of image files for ``main.py predict`` (default: the test split).
            fold: with ``n_folds``, validate on this fold of a fixed k-fold split of the training data.
            n_folds: the number of folds (sh/hparams.py --folds writes both).
        """
        super().__init__(data_dir=data_dir, batch_size=batch_size, val_fraction=val_fraction, split_seed=split_seed,
                         num_workers=num_workers, fold=fold, n_folds=n_folds)
        if image_size < 1:
            raise ConfigError(f"data.init_args.image_size must be a positive integer, got {image_size!r}")
        self.image_size = image_size
        self.augment = augment
        self.pixel_scaling = (IMAGENET_MEAN, IMAGENET_STD) if normalize else ((0.0,) * 3, (1.0,) * 3)
        self.predict_dir = predict_dir
        self.classes = class_names(self.data_dir / "train")
        self.num_classes = len(self.classes)
        self.input_shape = (3, image_size, image_size)

    def _transform(self, train: bool):
        steps = [transforms.Resize((self.image_size, self.image_size))]
        if train and self.augment:
            steps.append(transforms.RandomHorizontalFlip())
        steps += [transforms.ToTensor(), transforms.Normalize(*self.pixel_scaling)]
        return transforms.Compose(steps)

    def _folder(self, split: str, train: bool) -> datasets.ImageFolder:
        folder = self.data_dir / split
        if class_names(folder) != self.classes:
            raise DatasetNotFoundError(f"{folder} has classes {class_names(folder)}, but train/ has {self.classes}")
        try:
            return datasets.ImageFolder(str(folder), transform=self._transform(train))
        except FileNotFoundError as error:
            raise DatasetNotFoundError(f"{folder}: {error}") from error

    def setup(self, stage: str) -> None:
        if stage == "predict" and self.predict_dir:
            self.predict_set = ImageFilesDataset(self.predict_dir, self.input_shape, *self.pixel_scaling)
            return
        if self.train_set is None:
            train_view = self._folder("train", train=True)
            if (self.data_dir / "val").is_dir():
                if self.n_folds is not None:
                    raise ConfigError(f"data.init_args.fold: k-fold validation is carved from train/, but "
                                      f"{self.data_dir / 'val'} holds a fixed validation set (move it, or drop fold)")
                self.train_set, self.val_set = train_view, self._folder("val", train=False)
            else:
                train_idx, val_idx = self.train_val_indices(len(train_view), train_view.targets)
                eval_view = self._folder("train", train=False)
                self.train_set = Subset(train_view, train_idx.tolist())
                self.val_set = Subset(eval_view, val_idx.tolist())
        if stage in ("test", "predict") and self.test_set is None:
            has_test = (self.data_dir / "test").is_dir()
            self.test_set = self._folder("test", train=False) if has_test else self.val_set
