"""TextClassifier: token ids and their padding mask -> class logits, with a small Transformer encoder, a bag of
embeddings, or a pretrained Hugging Face encoder fine-tuned (``backbone: hf:<name>``, as seed 001's BERT)."""
from typing import Optional

import torch
from pytorch_lightning import LightningModule
from torch import nn
from torch.nn import functional as F

from contract import ConfigError

from ._common import HF_PREFIX, PretrainedEncoder, TextEncoder
from ._metrics import classification_metrics


class TextNetwork(nn.Module):
    """The classifier's network without Lightning: (tokens, mask) -> logits."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(tokens, mask))


class TextClassifier(LightningModule):
    """Text classification: ``logits = head(encoder(tokens, mask))``, loss = cross-entropy."""

    def __init__(self, vocab_size: int = 20000, num_classes: int = 2, tokenizer: str = "word",
                 backbone: str = "{{ cookiecutter.__model }}", embed_dim: int = 64, heads: int = 4, layers: int = 2,
                 dropout: float = 0.1, max_length: int = 256):
        """
        Args:
            vocab_size: token ids the embedding holds (linked from the datamodule).
            num_classes: number of classes (linked from the datamodule).
            tokenizer: how the datamodule tokenized (linked): an hf:<name> backbone needs that same tokenizer.
            backbone: transformer, bag (a bag of embeddings), or hf:<name> (a pretrained Hugging Face encoder).
            embed_dim: width of the embeddings (transformer and bag).
            heads: attention heads (transformer).
            layers: encoder layers (transformer).
            dropout: dropout in the encoder and before the head.
            max_length: longest text the position embedding covers (transformer).
        """
        super().__init__()
        self.save_hyperparameters()
        if backbone.startswith(HF_PREFIX):
            if tokenizer != backbone:
                raise ConfigError(f"backbone {backbone} reads the ids of its own tokenizer: set "
                                  f"data.init_args.tokenizer to {backbone} (it is {tokenizer})")
            encoder = PretrainedEncoder(backbone[len(HF_PREFIX):])
            width = encoder.width
        elif backbone in ("transformer", "bag"):
            encoder = TextEncoder(vocab_size, embed_dim, heads, layers if backbone == "transformer" else 0, dropout,
                                  max_length)
            width = embed_dim
        else:
            raise ConfigError(f"model.init_args.backbone must be transformer, bag or hf:<name>, got {backbone!r}")
        self.net = TextNetwork(encoder, nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes)))
        self.train_metrics, self.val_metrics, self.test_metrics = (
            classification_metrics(num_classes, f"{stage}/") for stage in ("train", "val", "test"))

    def forward(self, tokens: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(tokens, tokens != 0 if mask is None else mask)

    def features(self, tokens: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The pooled encoder states, before the head."""
        return self.net.encoder(tokens, tokens != 0 if mask is None else mask)

    def _step(self, batch, batch_idx: int, stage: str) -> torch.Tensor:
        tokens, mask, labels = batch
        logits, metrics = self(tokens, mask), getattr(self, f"{stage}_metrics")
        loss = F.cross_entropy(logits, labels)
        metrics.update(logits.detach(), labels)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, sync_dist=True,
                 batch_size=len(labels))
        if batch_idx == 0:  # computed at epoch end over every batch, then reset by Lightning: one log call
            self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "train")
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, batch_idx, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, batch_idx, "test")

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """The predicted class (its name, from the datamodule's classes) and the probability of each class."""
        tokens, mask, _ = batch
        probabilities = self(tokens, mask).softmax(dim=-1)
        return {"predicted": probabilities.argmax(dim=-1), "prob": probabilities}
