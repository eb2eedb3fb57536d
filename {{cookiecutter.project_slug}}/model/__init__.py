"""LightningModules of this project; configs name them as ``model.<ClassName>``."""
from ._utils import load_network
from .classifier import ImageClassifier

__all__ = ["ImageClassifier", "load_network"]
