"""The model maps a batch to class logits and trains with a finite loss for every backbone; transfer learning:
ImageNet weights from torch's cache (a clear error without them), a frozen backbone, an autoencoder's encoder."""
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torchvision import models

from contract import ConfigError
from model import ImageClassifier, load_network
from model._common import BACKBONES, build_backbone

PRETRAINED = {"resnet18_pretrained": "resnet18", "resnet50_pretrained": "resnet50"}


@pytest.fixture
def imagenet_cache(tmp_path, monkeypatch):
    """torch's cache (TORCH_HOME) in tmp_path holding ImageNet weight files of the right names (random weights):
    what a machine without network has once someone put the files there."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    for name in PRETRAINED.values():
        weights = models.get_model_weights(name).IMAGENET1K_V1
        torch.save(models.get_model(name).state_dict(), folder / Path(weights.url).name)
    return folder


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
@pytest.mark.parametrize("input_shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8)])
def test_forward_gives_one_logit_per_class(backbone, input_shape, request):
    if backbone in PRETRAINED:
        request.getfixturevalue("imagenet_cache")
    model = ImageClassifier(backbone=backbone, num_classes=7, input_shape=input_shape)
    logits = model(torch.randn(4, *input_shape))
    assert logits.shape == (4, 7)


def test_a_damaged_imagenet_weights_file_in_the_cache_is_named_not_loaded(imagenet_cache):
    cached = imagenet_cache / Path(models.get_model_weights("resnet18").IMAGENET1K_V1.url).name
    cached.write_bytes(cached.read_bytes()[:4096])  # an interrupted download
    with pytest.raises(ConfigError, match=f"{cached.name} is not a readable checkpoint.*delete it to download it"):
        build_backbone("resnet18_pretrained", (3, 32, 32))


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
    model = ImageClassifier(backbone="mlp", num_classes=3, input_shape=(1, 8, 8))
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, max_epochs=0)
    trainer.strategy.connect(model)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    net = load_network(path)
    x = torch.randn(2, 1, 8, 8)
    assert isinstance(net, torch.nn.Module) and not isinstance(net, pl.LightningModule)
    assert torch.allclose(net(x), model.net.eval()(x))


def test_imagenet_weights_come_from_torch_s_cache_and_meet_grey_images_summed(imagenet_cache):
    saved = torch.load(imagenet_cache / "resnet18-f37072fd.pth")
    model = ImageClassifier(backbone="resnet18_pretrained", num_classes=10, input_shape=(1, 28, 28))
    assert torch.allclose(model.backbone.conv1.weight, saved["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(model.backbone.layer4[1].conv2.weight, saved["layer4.1.conv2.weight"])


def test_imagenet_weights_missing_offline_are_one_line_naming_the_file_and_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *args, **kwargs: (_ for _ in ()).throw(
        OSError("network unreachable (test)")))
    with pytest.raises(ConfigError, match=r"resnet18-f37072fd.pth: not in torch's cache .*empty/hub/checkpoints "
                                          r"and the download failed"):
        ImageClassifier(backbone="resnet18_pretrained", input_shape=(3, 32, 32))


class BackboneSnapshots(pl.Callback):
    """The backbone's weights at the end of every training epoch."""

    def __init__(self):
        self.seen = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.seen.append([p.detach().clone() for p in pl_module.backbone.parameters()])


def fit_two_epochs(model) -> list:
    snapshots = BackboneSnapshots()
    data = torch.utils.data.TensorDataset(torch.randn(32, 1, 8, 8), torch.randint(0, 3, (32,)))
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[snapshots], accelerator="cpu")
    model.configure_optimizers = lambda: torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.backbone.parameters()]
    head = [p.detach().clone() for p in model.net.head.parameters()]
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=8))
    assert any(not torch.equal(a, b) for a, b in zip(head, model.net.head.parameters()))  # the head always learns
    return [before, *snapshots.seen]


def test_a_frozen_backbone_trains_only_the_head_and_unfreezes_when_told():
    frozen = fit_two_epochs(ImageClassifier(backbone="mlp", num_classes=3, input_shape=(1, 8, 8), freeze_backbone=True))
    assert all(torch.equal(a, b) for a, b in zip(frozen[0], frozen[2]))
    later = fit_two_epochs(ImageClassifier(backbone="mlp", num_classes=3, input_shape=(1, 8, 8), freeze_backbone=True,
                                           unfreeze_at_epoch=1))
    assert all(torch.equal(a, b) for a, b in zip(later[0], later[1]))  # epoch 0: frozen
    assert any(not torch.equal(a, b) for a, b in zip(later[1], later[2]))  # epoch 1: trained
    with pytest.raises(ConfigError, match="unfreeze_at_epoch goes with freeze_backbone: true"):
        ImageClassifier(unfreeze_at_epoch=2)


def autoencoder_checkpoint(path, backbone="cnn", input_shape=(1, 8, 8)):
    """A checkpoint as an AutoEncoder run leaves it: its encoder's backbone under net.encoder.backbone."""
    encoder, _ = build_backbone(backbone, input_shape)
    state = {f"net.encoder.backbone.{key}": value for key, value in encoder.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"backbone": backbone, "input_shape": input_shape},
                "pytorch-lightning_version": "2.6.0"}, path)
    return encoder


def test_an_autoencoder_s_encoder_starts_the_classifier_and_one_that_does_not_fit_is_named(tmp_path):
    encoder = autoencoder_checkpoint(tmp_path / "ae.ckpt")
    model = ImageClassifier(backbone="cnn", input_shape=(1, 8, 8), encoder_checkpoint=str(tmp_path / "ae.ckpt"))
    assert all(torch.equal(a, b) for a, b in zip(encoder.state_dict().values(), model.backbone.state_dict().values()))
    with pytest.raises(ConfigError, match=r"its encoder is backbone 'cnn' for input \(1, 8, 8\), this classifier's is "
                                          r"'cnn' for \(3, 32, 32\): they do not fit"):
        ImageClassifier(backbone="cnn", input_shape=(3, 32, 32), encoder_checkpoint=str(tmp_path / "ae.ckpt"))
    torch.save({"state_dict": {"net.head.weight": torch.zeros(1)}, "pytorch-lightning_version": "2.6.0"},
               tmp_path / "other.ckpt")
    with pytest.raises(ConfigError, match="holds no autoencoder encoder"):
        ImageClassifier(backbone="cnn", input_shape=(1, 8, 8), encoder_checkpoint=str(tmp_path / "other.ckpt"))
