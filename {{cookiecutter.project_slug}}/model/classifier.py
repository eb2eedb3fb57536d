"""ImageClassifier: a backbone network and a linear head trained with cross-entropy on class logits."""
from collections import OrderedDict
from typing import Literal, Optional

import torch
from pytorch_lightning import LightningModule
from pytorch_lightning.callbacks import BackboneFinetuning
from torch import nn

from contract import ConfigError, load_checkpoint, project_path

from ._common import BACKBONES, build_backbone
from ._metrics import classification_metrics


class FrozenBackbone(BackboneFinetuning):
    """Lightning's BackboneFinetuning, freezing ``pl_module.backbone`` from the start of fit and making it
    trainable at ``unfreeze_backbone_at_epoch`` (never when None). The optimizer holds every parameter from
    the start (the config builds it), so unfreezing adds no parameter group and leaves learning rates alone.
    """

    def __init__(self, unfreeze_backbone_at_epoch: Optional[int] = None):
        super().__init__(unfreeze_backbone_at_epoch=unfreeze_backbone_at_epoch if unfreeze_backbone_at_epoch is not None
                         else 2**31)

    def finetune_function(self, pl_module, epoch: int, optimizer) -> None:
        if epoch == self.unfreeze_backbone_at_epoch:
            self.make_trainable(pl_module.backbone)


def load_encoder(backbone: nn.Module, checkpoint_path: str, name: str, input_shape) -> None:
    """Copy an AutoEncoder checkpoint's encoder (its ``net.encoder.backbone``) into ``backbone``; ConfigError when the
    file holds none, or one that does not fit."""
    path = project_path(checkpoint_path)
    if not path.is_file():
        raise ConfigError(f"encoder_checkpoint {path} does not exist")
    checkpoint = load_checkpoint(path)
    prefix = "net.encoder.backbone."
    weights = {k[len(prefix):]: v for k, v in checkpoint.get("state_dict", {}).items() if k.startswith(prefix)}
    trained = checkpoint.get("hyper_parameters", {})
    if not weights:
        raise ConfigError(f"encoder_checkpoint {path} holds no autoencoder encoder (no {prefix}* weights)")
    if (trained.get("backbone"), tuple(trained.get("input_shape", ()))) != (name, tuple(input_shape)):
        raise ConfigError(f"encoder_checkpoint {path}: its encoder is backbone {trained.get('backbone')!r} for "
                          f"input {tuple(trained.get('input_shape', ()))}, this classifier's is {name!r} for "
                          f"{tuple(input_shape)}: they do not fit")
    try:
        backbone.load_state_dict(weights)
    except RuntimeError as error:
        raise ConfigError(f"encoder_checkpoint {path} does not fit backbone {name!r}: "
                          f"{str(error).splitlines()[-1].strip()}") from None


class ImageClassifier(LightningModule):
    """Image classification: ``logits = head(backbone(x))``, loss = cross-entropy(logits, y).

    The optimizer and learning-rate scheduler come from the config (``optimizer:`` and
    ``lr_scheduler:``), so they are swapped without touching this class.
    """

    def __init__(
        self,
        backbone: Literal[tuple(BACKBONES)] = "{{ cookiecutter.__model }}",
        num_classes: int = 10,
        input_shape: tuple[int, int, int] = (1, 28, 28),
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
        freeze_backbone: bool = False,
        unfreeze_at_epoch: Optional[int] = None,
        encoder_checkpoint: Optional[str] = None,
    ):
        """
        Args:
            backbone: network from model/_common.py's BACKBONES (``*_pretrained``: ImageNet weights).
            num_classes: number of classes (linked from the datamodule).
            input_shape: (channels, height, width) of one image (linked from the datamodule).
            dropout: dropout before the linear head.
            label_smoothing: cross-entropy label smoothing.
            freeze_backbone: train only the head (transfer learning).
            unfreeze_at_epoch: with freeze_backbone, train the backbone too from this epoch on.
            encoder_checkpoint: an autoencoder's checkpoint (same backbone and input shape) to start the
                backbone from (relative to the project folder).
        """
        super().__init__()
        self.save_hyperparameters()
        if unfreeze_at_epoch is not None and not freeze_backbone:
            raise ConfigError("model.init_args.unfreeze_at_epoch goes with freeze_backbone: true")
        features, width = build_backbone(backbone, input_shape)
        if encoder_checkpoint:
            load_encoder(features, encoder_checkpoint, backbone, input_shape)
        self.net = nn.Sequential(OrderedDict(backbone=features, head=nn.Sequential(nn.Dropout(dropout),
                                                                                  nn.Linear(width, num_classes))))
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.train_metrics = classification_metrics(num_classes, prefix="train/")
        self.val_metrics = classification_metrics(num_classes, prefix="val/")
        self.test_metrics = classification_metrics(num_classes, prefix="test/")

    @property
    def backbone(self) -> nn.Module:
        return self.net.backbone

    @property
    def example_input_array(self) -> torch.Tensor:
        """Two blank images in the parameters' dtype (float64 under 64-true): the summary's and graph's input."""
        return torch.zeros(2, *self.hparams.input_shape, dtype=next(self.parameters()).dtype)

    def configure_callbacks(self) -> list:
        return [FrozenBackbone(self.hparams.unfreeze_at_epoch)] if self.hparams.freeze_backbone else []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's features: the penultimate layer."""
        return self.backbone(x)

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
