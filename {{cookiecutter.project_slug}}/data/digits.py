"""scikit-learn's bundled handwritten digits: 1,797 real 8x8 images, no download needed."""
from typing import Optional

import torch

from ._common import InMemoryImageDataModule, split_indices

TEST_FRACTION = 0.2
TEST_SPLIT_SEED = 0  # fixed: the test set never changes with the user's split_seed


class DigitsDataModule(InMemoryImageDataModule):
    """8x8 grey digits (16 grey levels scaled to 0..255); a fixed 20 % is held out for test."""

    num_classes = 10
    input_shape = (1, 8, 8)
    mean = (0.3051,)
    std = (0.3784,)

    def __init__(self, batch_size: int = 64, val_fraction: float = 0.1, split_seed: int = 42, augment: bool = False,
                 predict_dir: Optional[str] = None):
        """
        Args:
            batch_size: samples per batch.
            val_fraction: share of the training part kept for validation.
            split_seed: seed of the fixed train/validation split.
            augment: random crop and flip on training batches.
            predict_dir: folder of image files for ``main.py predict`` (default: the test split).
        """
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, split_seed=split_seed, augment=augment,
                         predict_dir=predict_dir)

    def load_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.from_numpy(digits.images * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)
        labels = torch.from_numpy(digits.target).long()
        train_idx, test_idx = split_indices(len(labels), TEST_FRACTION, TEST_SPLIT_SEED)
        index = train_idx if train else test_idx
        return images[index].contiguous(), labels[index]
