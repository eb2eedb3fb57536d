{%- if cookiecutter.task in ['image_classification', 'autoencoder'] -%}
"""Building blocks: the image networks of this project, chosen by name.

A backbone maps a (N, C, H, W) batch to (N, width) features.
{% if cookiecutter.task == 'autoencoder' -%}
The AutoEncoder puts a linear map to its latent code on one (its encoder) and a decoder after it; an
ImageClassifier (in a classification project) puts a linear head on the same definitions, so it can
start from this encoder (its ``encoder_checkpoint``).
{%- else -%}
The ImageClassifier puts a linear head on one; an AutoEncoder (in an autoencoder project) encodes with
the same definitions, so a classifier can start from an autoencoder's encoder (``encoder_checkpoint``).
{%- endif %}
Add your own to ``BACKBONES``.
"""
import math
from pathlib import Path

import torch
from torch import nn
from torchvision import models

from contract import ConfigError, check_checkpoint


def small_resnet18(input_shape) -> tuple[nn.Module, int]:
    """torchvision's ResNet-18 for small images: a 3x3 stride-1 stem, no max-pool, any channel count."""
    net = models.resnet18()
    net.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    width, net.fc = net.fc.in_features, nn.Identity()
    return net, width


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


def small_cnn(input_shape) -> tuple[nn.Module, int]:
    """Two conv blocks (32, 64 channels) and global average pooling."""
    net = nn.Sequential(conv_block(input_shape[0], 32), conv_block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return net, 64


def mlp(input_shape, hidden: int = 512) -> tuple[nn.Module, int]:
    """Two hidden layers of ``hidden`` units with ReLU."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(inplace=True),
                        nn.Linear(hidden, hidden), nn.ReLU(inplace=True))
    return net, hidden


def pretrained_resnet(name: str):
    """torchvision's ImageNet ResNet ``name`` (resnet18, resnet50), with its ImageNet stem kept.

    Small images keep their size (no resize to 224: a training step costs about 24x more on a CPU); a grey image
    meets the RGB stem through conv1's weights summed over its 3 input channels, which answers a grey
    image exactly as the original answers the same image repeated in R, G and B.
    """
    weights = models.get_model_weights(name).IMAGENET1K_V1

    def build(input_shape) -> tuple[nn.Module, int]:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if cached.exists():  # a damaged file (an interrupted download) is named, not loaded
            try:
                check_checkpoint(cached, lightning=False)
            except ConfigError as error:
                raise ConfigError(f"backbone {name}_pretrained: {error}; delete it to download it again") from None
        try:
            net = models.get_model(name, weights=weights)
        except Exception as error:  # noqa: BLE001 - no network, a proxy, a truncated file: the same advice
            raise ConfigError(f"backbone {name}_pretrained needs torchvision's ImageNet weights {cached.name}: not in "
                              f"torch's cache {cached.parent} and the download failed ({type(error).__name__}); "
                              f"put the file there (from {weights.url}) or set TORCH_HOME") from error
        if input_shape[0] != 3:
            rgb = net.conv1.weight.data
            net.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=7, stride=2, padding=3, bias=False)
            net.conv1.weight.data = rgb.sum(dim=1, keepdim=True).repeat(1, input_shape[0], 1, 1) / input_shape[0]
        width, net.fc = net.fc.in_features, nn.Identity()
        return net, width

    return build


BACKBONES = {
    "resnet": small_resnet18,
    "cnn": small_cnn,
    "mlp": mlp,
    "resnet18_pretrained": pretrained_resnet("resnet18"),
    "resnet50_pretrained": pretrained_resnet("resnet50"),
}


def build_backbone(name: str, input_shape) -> tuple[nn.Module, int]:
    """(backbone network, width of its features) for ``BACKBONES[name]``."""
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name](tuple(input_shape))
{%- if cookiecutter.task == 'autoencoder' %}


def build_decoder(name: str, latent_dim: int, input_shape) -> nn.Module:
    """The way back from a latent code to a (N, C, H, W) image (logits): the mirror of ``cnn`` or ``mlp``."""
    channels, height, width = input_shape
    if name == "mlp":
        return nn.Sequential(nn.Linear(latent_dim, 512), nn.ReLU(inplace=True), nn.Linear(512, 512),
                             nn.ReLU(inplace=True), nn.Linear(512, math.prod(input_shape)),
                             nn.Unflatten(1, tuple(input_shape)))
    if name != "cnn":
        raise ConfigError(f"the autoencoder decodes for backbone cnn or mlp, not {name!r}")
    small = (max(1, height // 4), max(1, width // 4))
    return nn.Sequential(
        nn.Linear(latent_dim, 64 * small[0] * small[1]), nn.ReLU(inplace=True), nn.Unflatten(1, (64, *small)),
        nn.ConvTranspose2d(64, 32, 2, stride=2), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
        nn.ConvTranspose2d(32, channels, 2, stride=2),
        nn.Upsample(size=(height, width), mode="bilinear"),  # sizes that 4 does not divide
    )
{%- endif %}
{%- elif cookiecutter.task == 'tabular' -%}
"""Building blocks of the tabular model."""
import torch
from torch import nn


class Rescale(nn.Module):
    """``x * std + mean``: a standardised prediction back in the target's units."""

    def __init__(self, mean: float, std: float):
        super().__init__()
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(-1) * self.std + self.mean
{%- else -%}
"""Building blocks of the text classifier: the encoders it can use, chosen by ``backbone``."""
import torch
from torch import nn

from contract import ConfigError

HF_PREFIX = "hf:"


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean over the real tokens (mask True) of (N, L, D) states: (N, D)."""
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class TextEncoder(nn.Module):
    """Embeddings, then a Transformer encoder (``layers`` > 0) or nothing (a bag of embeddings), then the mean
    over real tokens: (tokens (N, L), mask (N, L)) -> (N, embed_dim)."""

    def __init__(self, vocab_size: int, embed_dim: int, heads: int, layers: int, dropout: float, max_length: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.position = nn.Embedding(max_length, embed_dim) if layers else None
        layer = nn.TransformerEncoderLayer(embed_dim, heads, 4 * embed_dim, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False) if layers else None

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        states = self.embed(tokens)
        if self.encoder is not None:
            positions = torch.arange(tokens.shape[1], device=tokens.device).clamp(max=self.position.num_embeddings - 1)
            states = self.encoder(states + self.position(positions), src_key_padding_mask=~mask)
        return masked_mean(states, mask)


class PretrainedEncoder(nn.Module):
    """A Hugging Face encoder (``transformers.AutoModel``): the mean of its last hidden states over real tokens."""

    def __init__(self, name: str):
        super().__init__()
        try:
            from transformers import AutoModel
        except ImportError:
            raise ConfigError(f"backbone hf:{name} needs the transformers package: pip install transformers") from None
        try:
            self.model = AutoModel.from_pretrained(name)
        except OSError as error:
            from huggingface_hub.constants import HF_HUB_CACHE

            raise ConfigError(f"Hugging Face model {name!r} is not in the cache {HF_HUB_CACHE} and could not be "
                              f"downloaded ({str(error).splitlines()[0][:120]}); download it where there is network "
                              "(or set HF_HOME to a copy of that cache)") from None
        self.width = self.model.config.hidden_size

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_mean(self.model(input_ids=tokens, attention_mask=mask.long()).last_hidden_state, mask)
{%- endif %}
