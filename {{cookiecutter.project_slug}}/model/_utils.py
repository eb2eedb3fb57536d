"""Helpers around trained models: getting the plain network back out of a checkpoint."""
from pathlib import Path

from torch import nn


def load_network(checkpoint_path, map_location: str = "cpu") -> nn.Module:
    """Return the plain ``nn.Module`` (``ImageClassifier.net``) of a Lightning checkpoint, in eval mode.

    The result needs neither Lightning nor this project's LightningModule to run:
    ``logits = load_network("res/exp/version_0/checkpoints/last.ckpt")(images)``.
    """
    from .classifier import ImageClassifier

    module = ImageClassifier.load_from_checkpoint(Path(checkpoint_path), map_location=map_location)
    return module.net.eval()
