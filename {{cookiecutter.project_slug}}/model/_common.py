"""Building blocks: the networks an ImageClassifier can use, chosen by name.

Each builder takes ``(input_shape, num_classes, dropout)`` and returns an ``nn.Module``
mapping a (N, C, H, W) batch to (N, num_classes) logits. Add your own to ``BACKBONES``.
"""
import math

from torch import nn
from torchvision.models import resnet18


def small_resnet18(input_shape, num_classes: int, dropout: float = 0.0) -> nn.Module:
    """torchvision's ResNet-18 for small images: a 3x3 stride-1 stem, no max-pool, any channel count."""
    net = resnet18(num_classes=num_classes)
    net.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    if dropout:
        net.fc = nn.Sequential(nn.Dropout(dropout), net.fc)
    return net


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 conv + batch-norm + ReLU layers followed by 2x2 max-pooling."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


def small_cnn(input_shape, num_classes: int, dropout: float = 0.0) -> nn.Module:
    """Two conv blocks (32, 64 channels), global average pooling and a linear classifier."""
    return nn.Sequential(
        conv_block(input_shape[0], 32),
        conv_block(32, 64),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(64, num_classes),
    )


def mlp(input_shape, num_classes: int, dropout: float = 0.0, hidden: int = 512) -> nn.Module:
    """Two hidden layers of ``hidden`` units with ReLU and dropout."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


BACKBONES = {"resnet": small_resnet18, "cnn": small_cnn, "mlp": mlp}


def build_backbone(name: str, input_shape, num_classes: int, dropout: float = 0.0) -> nn.Module:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name](tuple(input_shape), num_classes, dropout)
