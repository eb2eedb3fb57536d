"""Machine-dependent speed settings: TF32 tensor cores only when training on CUDA GPUs."""
import types

import pytest
import torch

from runtime.performance import use_tensor_cores


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
