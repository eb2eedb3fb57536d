"""Checks made before anything is built: a choice this machine cannot run stops with one clear line."""
import importlib.util

import torch


class ConfigError(RuntimeError):
    """A configuration this machine cannot run; main.py prints it as one ``ERROR:`` line."""


GPU_ONLY_STRATEGIES = {"fsdp": "FSDP", "deepspeed": "DeepSpeed"}


def _strategy_name(strategy) -> str:
    if isinstance(strategy, str):
        return strategy.split("_")[0].lower()
    class_path = str(getattr(strategy, "class_path", "")).lower()
    return next((key for key in GPU_ONLY_STRATEGIES if key in class_path), class_path)


def check_hardware(trainer_config, cuda_available: bool = None) -> None:
    """Raise ConfigError when the strategy, precision or devices need a GPU that is not there."""
    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    strategy = _strategy_name(trainer_config.strategy)
    if strategy in GPU_ONLY_STRATEGIES and not cuda:
        raise ConfigError(
            f"strategy '{strategy}' ({GPU_ONLY_STRATEGIES[strategy]}) needs CUDA GPUs and none is visible; "
            "use --trainer.strategy=ddp or auto on this machine"
        )
    if strategy == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        raise ConfigError("strategy 'deepspeed' needs the deepspeed package: pip install deepspeed")
    precision = str(trainer_config.precision)
    if precision in ("16-mixed", "16", "16-true") and not cuda:
        raise ConfigError(
            f"precision '{precision}' needs a CUDA GPU and none is visible; "
            "use --trainer.precision=bf16-mixed (mixed precision on CPU) or 32-true"
        )
    accelerator = str(trainer_config.accelerator)
    devices = trainer_config.devices
    gpu_ids = isinstance(devices, list) or (isinstance(devices, str) and "," in devices)
    if not cuda and (accelerator in ("gpu", "cuda") or gpu_ids):
        raise ConfigError(
            f"accelerator '{accelerator}' with devices {devices!r} asks for GPUs and none is visible; "
            "use --trainer.accelerator=cpu --trainer.devices=1 (or a count) on this machine"
        )
