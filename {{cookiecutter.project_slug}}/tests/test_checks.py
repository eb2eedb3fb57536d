"""Choices this machine cannot run are refused before anything is built; the others pass untouched."""
from argparse import Namespace

import pytest

from contract import ConfigError
from runtime.preflight import check_callbacks, check_hardware


def trainer(strategy="auto", precision="32-true", accelerator="auto", devices="auto"):
    return Namespace(strategy=strategy, precision=precision, accelerator=accelerator, devices=devices)


@pytest.mark.parametrize("settings,message", [
    ({"strategy": "fsdp"}, "strategy 'fsdp' (FSDP) runs on CUDA GPUs only"),
    ({"strategy": "deepspeed"}, "strategy 'deepspeed' (DeepSpeed) runs on CUDA GPUs only"),
    ({"strategy": "deepspeed_stage_2"}, "strategy 'deepspeed' (DeepSpeed) runs on CUDA GPUs only"),
    ({"strategy": Namespace(class_path="pytorch_lightning.strategies.FSDPStrategy")}, "strategy 'fsdp'"),
    ({"precision": "16-mixed"}, "precision '16-mixed' needs a CUDA GPU"),
    ({"accelerator": "gpu"}, "accelerator 'gpu'"),
    ({"devices": "0,1"}, "asks for GPUs"),
    ({"devices": -1}, "devices -1 (every GPU) needs CUDA GPUs"),
    ({"devices": "-1", "accelerator": "cpu"}, "devices -1 (every GPU) needs CUDA GPUs"),
])
def test_gpu_only_choices_are_refused_without_a_gpu(settings, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_hardware(trainer(**settings), cuda_available=False)


def test_the_cpu_accelerator_refuses_gpu_precision_even_when_a_gpu_is_there():
    with pytest.raises(ConfigError, match="the CPU accelerator is chosen"):
        check_hardware(trainer(precision="16-mixed", accelerator="cpu"), cuda_available=True)


@pytest.mark.parametrize("settings", [
    {}, {"strategy": "ddp", "devices": 2}, {"precision": "bf16-mixed"}, {"accelerator": "cpu", "devices": 1},
])
def test_cpu_choices_pass_without_a_gpu(settings):
    check_hardware(trainer(**settings), cuda_available=False)


def test_gpu_choices_pass_with_a_gpu():
    gpu_run = trainer(strategy="fsdp", precision="16-mixed", accelerator="gpu", devices=[0, 1])
    check_hardware(gpu_run, cuda_available=True)
    check_hardware(trainer(devices=-1), cuda_available=True)


def test_a_logging_callback_without_a_logger_is_refused():
    callbacks = [Namespace(class_path="pytorch_lightning.callbacks.DeviceStatsMonitor")]
    with pytest.raises(ConfigError, match="DeviceStatsMonitor logs through the logger"):
        check_callbacks(Namespace(logger=False, callbacks=callbacks))
    check_callbacks(Namespace(logger=None, callbacks=callbacks))  # None: Lightning's default logger
