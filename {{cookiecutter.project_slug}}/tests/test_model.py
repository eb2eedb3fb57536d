"""The model maps a batch to class logits and trains with a finite loss for every backbone."""
import pytest
import torch

from model import ImageClassifier, load_network
from model._common import BACKBONES


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
@pytest.mark.parametrize("input_shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8)])
def test_forward_gives_one_logit_per_class(backbone, input_shape):
    model = ImageClassifier(backbone=backbone, num_classes=7, input_shape=input_shape)
    logits = model(torch.randn(4, *input_shape))
    assert logits.shape == (4, 7)


def test_training_step_returns_a_finite_loss_with_gradients():
    model = ImageClassifier(backbone="cnn", num_classes=10, input_shape=(1, 28, 28))
    batch = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    loss = model.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_example_input_follows_the_model_s_dtype():
    model = ImageClassifier(backbone="cnn", num_classes=10, input_shape=(1, 8, 8))
    assert model.example_input_array.shape == (2, 1, 8, 8) and model.example_input_array.dtype == torch.float32
    assert model.double().example_input_array.dtype == torch.float64  # precision 64-true: the summary runs
    assert model(model.example_input_array).dtype == torch.float64


def test_hyperparameters_are_saved():
    model = ImageClassifier(backbone="mlp", num_classes=3, input_shape=(1, 8, 8), dropout=0.1)
    assert model.hparams.backbone == "mlp" and model.hparams.num_classes == 3 and model.hparams.dropout == 0.1


def test_load_network_returns_the_plain_module(tmp_path):
    import pytorch_lightning as pl

    model = ImageClassifier(backbone="mlp", num_classes=3, input_shape=(1, 8, 8))
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, max_epochs=0)
    trainer.strategy.connect(model)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    net = load_network(path)
    x = torch.randn(2, 1, 8, 8)
    assert isinstance(net, torch.nn.Module) and not isinstance(net, pl.LightningModule)
    assert torch.allclose(net(x), model.net.eval()(x))
