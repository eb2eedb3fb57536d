"""Speed: TF32 tensor cores only when training on CUDA GPUs; one logging call per training step."""
import types
from collections import Counter

import pytest
import torch
from pytorch_lightning import Trainer

from data._in_memory import InMemoryImageDataModule
from model import ImageClassifier
from runtime.preflight import use_tensor_cores


@pytest.fixture
def default_precision():
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision("highest")


def trainer(accelerator):
    return types.SimpleNamespace(accelerator=accelerator)


@pytest.mark.parametrize("accelerator", ["auto", "gpu", "cuda"])
def test_float32_matmuls_use_tensor_cores_on_cuda(default_precision, accelerator):
    assert use_tensor_cores(trainer(accelerator), cuda_available=True)
    assert torch.get_float32_matmul_precision() == "high"


@pytest.mark.parametrize("accelerator,cuda", [("cpu", True), ("auto", False), ("cpu", False)])
def test_cpu_training_keeps_full_float32_precision(default_precision, accelerator, cuda):
    assert not use_tensor_cores(trainer(accelerator), cuda_available=cuda)
    assert torch.get_float32_matmul_precision() == "highest"


def test_a_precision_chosen_earlier_is_kept(default_precision):
    torch.set_float32_matmul_precision("medium")
    assert not use_tensor_cores(trainer("gpu"), cuda_available=True)
    assert torch.get_float32_matmul_precision() == "medium"


class RandomImages(InMemoryImageDataModule):
    """40 random 4x4 grey images in 3 classes: 36 train (5 batches of 8), 4 validation (1 batch)."""

    num_classes, input_shape, mean, std = 3, (1, 4, 4), (0.5,), (0.25,)

    def load_split(self, train: bool):
        generator = torch.Generator().manual_seed(int(train))
        return torch.randint(0, 256, (40, 1, 4, 4), dtype=torch.uint8, generator=generator), torch.arange(40) % 3


def test_epoch_metrics_cover_every_batch_with_one_log_call_per_step(monkeypatch):
    model = ImageClassifier(backbone="mlp", num_classes=3, input_shape=(1, 4, 4))
    model.configure_optimizers = lambda: torch.optim.SGD(model.parameters(), lr=0.1)
    logged = Counter()
    log = model.log
    monkeypatch.setattr(model, "log", lambda name, *args, **kwargs: (logged.update([name]), log(name, *args, **kwargs)))
    updates_at_compute = Counter()
    for name, metric in [*model.train_metrics.items(), *model.val_metrics.items()]:
        def counting_compute(name=name, metric=metric, compute=metric.compute):
            updates_at_compute[name] = metric._update_count
            return compute()
        monkeypatch.setattr(metric, "compute", counting_compute)

    trainer = Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(model, RandomImages(batch_size=8))

    assert logged == {"train/loss": 5, "train/acc": 1, "train/f1": 1, "val/loss": 1, "val/acc": 1, "val/f1": 1}
    assert updates_at_compute == {"train/acc": 5, "train/f1": 5, "val/acc": 1, "val/f1": 1}  # every batch counted
    assert 0.0 <= float(trainer.callback_metrics["train/acc"]) <= 1.0
