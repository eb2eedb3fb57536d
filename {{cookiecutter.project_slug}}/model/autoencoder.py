"""AutoEncoder: an encoder to a latent code and a decoder back, trained to reconstruct its input (seed 001)."""
from collections import OrderedDict
from typing import Literal

import torch
from matplotlib.figure import Figure
from pytorch_lightning import LightningModule
from torch import nn
from torch.nn import functional as F

from ._common import build_backbone, build_decoder
from ._utils import save_figure


def pca_2d(points: torch.Tensor) -> torch.Tensor:
    """The first two principal components of ``points`` (N, D); the points themselves when D <= 2."""
    if points.shape[1] <= 2:
        return points
    centred = points - points.mean(dim=0)
    _, _, directions = torch.linalg.svd(centred, full_matrices=False)
    return centred @ directions[:2].T


class AutoEncoder(LightningModule):
    """``z = encoder(x)``, ``x' = sigmoid(decoder(z))``, loss = MSE or BCE between ``x'`` and ``x`` in [0, 1].

    After each validation it writes ``plots/epoch<N>-reconstructions.png`` (inputs above their
    reconstructions) and ``plots/epoch<N>-latent.png`` (the validation codes in 2-D, PCA when the latent
    has more dimensions, coloured by label) to the run folder, and to the logger when it takes images.
    ``predict`` gives each sample's reconstruction error and latent code.
    """

    def __init__(self, backbone: Literal["cnn", "mlp"] = "{{ cookiecutter.__model }}",
                 input_shape: tuple[int, int, int] = (1, 8, 8), latent_dim: int = 16,
                 loss: Literal["mse", "bce"] = "mse", plot_samples: int = 2000):
        """
        Args:
            backbone: the encoder's network, from model/_common.py (an ImageClassifier can start from it).
            input_shape: (channels, height, width) of one image (linked from the datamodule).
            latent_dim: size of the latent code.
            loss: mse, or bce (binary cross-entropy on pixel intensities).
            plot_samples: validation codes drawn in the latent plot, at most.
        """
        super().__init__()
        self.save_hyperparameters()
        features, width = build_backbone(backbone, input_shape)
        encoder = nn.Sequential(OrderedDict(backbone=features, to_latent=nn.Linear(width, latent_dim)))
        self.net = nn.Sequential(OrderedDict(encoder=encoder, decoder=build_decoder(backbone, latent_dim, input_shape),
                                             to_pixels=nn.Sigmoid()))
        self._shown = None  # (first validation inputs, reconstructions, codes, labels) for the plots

    @property
    def encoder(self) -> nn.Module:
        return self.net.encoder

    @property
    def example_input_array(self) -> torch.Tensor:
        return torch.zeros(2, *self.hparams.input_shape, dtype=next(self.parameters()).dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x``, in [0, 1]."""
        return self.net(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The latent code."""
        return self.encoder(x)

    def _loss(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.hparams.loss == "bce":
            return F.binary_cross_entropy_with_logits(logits, x)
        return F.mse_loss(torch.sigmoid(logits), x)

    def _step(self, batch, stage: str):
        x, _ = batch
        z = self.encoder(x)
        logits = self.net.decoder(z)
        loss = self._loss(logits, x)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, sync_dist=True)
        if stage != "train":
            self.log(f"{stage}/mse", F.mse_loss(torch.sigmoid(logits), x), on_epoch=True, sync_dist=True)
        return loss, z, logits

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch, batch_idx: int) -> None:
        _, z, logits = self._step(batch, "val")
        x, y = batch
        if batch_idx == 0:
            self._shown = [x[:8].cpu(), torch.sigmoid(logits[:8]).float().cpu(), [], []]
        if sum(len(codes) for codes in self._shown[2]) < self.hparams.plot_samples:
            self._shown[2].append(z.detach().float().cpu())
            self._shown[3].append(y.cpu())

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not self.trainer.is_global_zero or self._shown is None:
            return
        inputs, outputs, codes, labels = self._shown
        self._shown = None
        save_figure(self, self.reconstruction_figure(inputs, outputs), "reconstructions")
        save_figure(self, self.latent_figure(torch.cat(codes), torch.cat(labels)), "latent")

    @staticmethod
    def reconstruction_figure(inputs: torch.Tensor, outputs: torch.Tensor):
        """Inputs (top row) above their reconstructions (bottom row)."""
        figure = Figure(figsize=(1.2 * len(inputs), 2.6))
        axes = figure.subplots(2, len(inputs), squeeze=False)
        for column, (image, rebuilt) in enumerate(zip(inputs, outputs)):
            for row, picture in enumerate((image, rebuilt)):
                axes[row, column].imshow(picture.permute(1, 2, 0).squeeze(-1).clamp(0, 1), cmap="gray",
                                         vmin=0, vmax=1)
                axes[row, column].axis("off")
        figure.suptitle("inputs (top) and reconstructions (bottom)")
        return figure

    @staticmethod
    def latent_figure(codes: torch.Tensor, labels: torch.Tensor):
        """The codes in 2-D (PCA beyond 2 dimensions), coloured by label."""
        points = pca_2d(codes)
        figure = Figure(figsize=(5, 4.5))
        axis = figure.subplots()
        scatter = axis.scatter(points[:, 0], points[:, -1], c=labels, cmap="tab10", s=6)
        axis.legend(*scatter.legend_elements(), title="label", fontsize="small", loc="best")
        axis.set(title="latent codes" + (" (PCA)" if codes.shape[1] > 2 else ""), xlabel="1", ylabel="2")
        return figure

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """Each sample's reconstruction error (mean squared, per pixel) and latent code."""
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        z = self.encoder(x)
        error = (self.net.to_pixels(self.net.decoder(z)) - x).pow(2).flatten(1).mean(dim=1)
        return {"reconstruction_error": error, "latent": z}
