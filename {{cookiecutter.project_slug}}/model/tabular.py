"""TabularModel: an MLP on encoded table rows, for classification or regression."""
from typing import Optional

import torch
from pytorch_lightning import LightningModule
from torch import nn
from torch.nn import functional as F

from ._common import Rescale
from ._metrics import classification_metrics, regression_metrics


class TabularModel(LightningModule):
    """``hidden`` units x ``layers`` with ReLU and dropout, then one output per class (cross-entropy), or one
    value (regression: learned on the standardised target, predicted in its units; the loss is the MSE in
    standard deviations, the metrics are in the target's units)."""

    def __init__(self, num_features: int = 30, num_classes: Optional[int] = 2,
                 target_scale: Optional[tuple[float, float]] = None, hidden: int = 128, layers: int = 2,
                 dropout: float = 0.1):
        """
        Args:
            num_features: width of an encoded row (linked from the datamodule).
            num_classes: classes of the target; None for regression (linked from the datamodule).
            target_scale: (mean, std) of a regression target in the training rows (linked from the datamodule).
            hidden: units per hidden layer.
            layers: hidden layers.
            dropout: dropout after each hidden layer.
        """
        super().__init__()
        self.save_hyperparameters()
        self.regression = num_classes is None
        body, width = [], num_features
        for _ in range(layers):
            body += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = hidden
        head = [nn.Linear(width, 1), Rescale(*(target_scale or (0.0, 1.0)))] if self.regression else [
            nn.Linear(width, num_classes)]
        self.net = nn.Sequential(nn.Sequential(*body), *head)
        def metrics(stage: str):
            prefix = f"{stage}/"
            return regression_metrics(prefix) if self.regression else classification_metrics(num_classes, prefix)

        self.train_metrics, self.val_metrics, self.test_metrics = metrics("train"), metrics("val"), metrics("test")

    @property
    def example_input_array(self) -> torch.Tensor:
        return torch.zeros(2, self.hparams.num_features, dtype=next(self.parameters()).dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, classes), or predicted values (N,) in the target's units."""
        return self.net(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer."""
        return self.net[0](x)

    def _step(self, batch, batch_idx: int, stage: str) -> torch.Tensor:
        x, y = batch
        output, metrics = self(x), getattr(self, f"{stage}_metrics")
        if self.regression:
            loss = F.mse_loss(output, y) / self.net[-1].std ** 2
            metrics.update(output.detach(), y)
        else:
            loss = F.cross_entropy(output, y)
            metrics.update(output.detach().softmax(dim=-1), y)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, sync_dist=True)
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
        """The predicted value, or the predicted class and the probability of each class."""
        output = self(batch[0])
        if self.regression:
            return {"predicted": output}
        probabilities = output.softmax(dim=-1)
        return {"predicted": probabilities.argmax(dim=-1), "prob": probabilities}
