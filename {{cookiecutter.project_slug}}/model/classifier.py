"""ImageClassifier: a backbone network trained with cross-entropy on class logits."""
from typing import Literal

import torch
from pytorch_lightning import LightningModule
from torch import nn

from ._common import build_backbone
from ._metrics import classification_metrics


class ImageClassifier(LightningModule):
    """Image classification: ``logits = net(x)``, loss = cross-entropy(logits, y).

    The optimizer and learning-rate scheduler come from the config (``optimizer:`` and
    ``lr_scheduler:``), so they are swapped without touching this class.
    """

    def __init__(
        self,
        backbone: Literal["resnet", "cnn", "mlp"] = "{{ cookiecutter.model }}",
        num_classes: int = 10,
        input_shape: tuple[int, int, int] = (1, 28, 28),
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
    ):
        """
        Args:
            backbone: network from model/_common.py's BACKBONES.
            num_classes: number of classes (linked from the datamodule).
            input_shape: (channels, height, width) of one image (linked from the datamodule).
            dropout: dropout before the classifier layer(s).
            label_smoothing: cross-entropy label smoothing.
        """
        super().__init__()
        self.save_hyperparameters()
        self.net = build_backbone(backbone, input_shape, num_classes, dropout)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.train_metrics = classification_metrics(num_classes, prefix="train/")
        self.val_metrics = classification_metrics(num_classes, prefix="val/")
        self.test_metrics = classification_metrics(num_classes, prefix="test/")

    @property
    def example_input_array(self) -> torch.Tensor:
        """Two blank images in the parameters' dtype (float64 under 64-true): the summary's and graph's input."""
        return torch.zeros(2, *self.hparams.input_shape, dtype=next(self.parameters()).dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch, batch_idx: int, stage: str, metrics) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.criterion(logits, y)
        metrics.update(logits.detach(), y)
        # sync_dist: under DDP the logged loss is the mean over all ranks (torchmetrics sync themselves)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, sync_dist=True)
        if batch_idx == 0:
            # Lightning keeps a reference to the metric objects, computes them at epoch end (over every batch
            # updated above) and resets them: logging them once per epoch saves a costly log call per step.
            self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "train")
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, batch_idx, "train", self.train_metrics)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, batch_idx, "val", self.val_metrics)

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, batch_idx, "test", self.test_metrics)

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """The predicted class and the probability of each class: predictions.csv's ``predicted`` and ``prob_*``."""
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        probabilities = self(x).softmax(dim=-1)
        return {"predicted": probabilities.argmax(dim=-1), "prob": probabilities}
