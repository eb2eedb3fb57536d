"""The autoencoder: reconstructions in [0, 1] of the input's shape, a latent code per image, the plots each
validation writes, and predictions holding each sample's reconstruction error and code."""
import csv

import pytest
import torch

from conftest import PROJECT_ROOT
from main import main
from model import AutoEncoder
from model.autoencoder import pca_2d

EXAMPLE = str(PROJECT_ROOT / "config" / "example.yaml")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("backbone", ["cnn", "mlp"])
@pytest.mark.parametrize("input_shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_reconstructions_have_the_input_s_shape_and_lie_in_0_1(backbone, input_shape):
    model = AutoEncoder(backbone=backbone, input_shape=input_shape, latent_dim=5)
    x = torch.rand(4, *input_shape)
    reconstruction = model(x)
    assert reconstruction.shape == x.shape and 0.0 <= float(reconstruction.min()) <= float(reconstruction.max()) <= 1.0
    assert model.features(x).shape == (4, 5)


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_a_training_step_gives_a_finite_loss_with_gradients(loss):
    model = AutoEncoder(backbone="cnn", input_shape=(1, 8, 8), loss=loss)
    value = model.training_step((torch.rand(6, 1, 8, 8), torch.zeros(6, dtype=torch.long)), 0)
    value.backward()
    assert torch.isfinite(value) and all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_the_latent_plot_uses_the_two_main_directions():
    codes = torch.randn(200, 6) * torch.tensor([5.0, 0.1, 0.1, 3.0, 0.1, 0.1])
    points = pca_2d(codes)
    assert points.shape == (200, 2) and points[:, 0].var() > points[:, 1].var() > 4 * codes[:, 1].var()
    assert torch.equal(pca_2d(codes[:, :2]), codes[:, :2])


def test_each_validation_writes_its_plots_and_predict_writes_errors_and_codes(tmp_path, fast_args):
    assert main(["fit", "-c", EXAMPLE, *fast_args, "--trainer.max_epochs=2", "--model.init_args.latent_dim=3"]) == 0
    run_dir = tmp_path / "res" / "example" / "version_0"
    for epoch in ("000", "001"):
        for name in ("reconstructions", "latent"):
            assert (run_dir / "plots" / f"epoch{epoch}-{name}.png").read_bytes().startswith(PNG)
    assert main(["predict", "-c", EXAMPLE, *fast_args, "--ckpt_path", "best"]) == 0
    with open(run_dir / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["sample_id", "reconstruction_error", "latent_0", "latent_1", "latent_2"]
    assert rows and all(float(row["reconstruction_error"]) >= 0.0 for row in rows)
