"""Checks made before anything is built: a choice this machine cannot run stops with one clear line."""
import importlib.util

import torch


class ConfigError(RuntimeError):
    """A configuration this machine cannot run; main.py prints it as one ``ERROR:`` line."""


GPU_ONLY_STRATEGIES = {"fsdp": "FSDP", "deepspeed": "DeepSpeed"}
CALLBACKS_NEEDING_A_LOGGER = ("DeviceStatsMonitor", "LearningRateMonitor")


def _class_name(component) -> str:
    return str(getattr(component, "class_path", "")).rsplit(".", 1)[-1]


def _strategy_name(strategy) -> str:
    if isinstance(strategy, str):
        return strategy.split("_")[0].lower()
    class_path = str(getattr(strategy, "class_path", "")).lower()
    return next((key for key in GPU_ONLY_STRATEGIES if key in class_path), class_path)


def check_hardware(trainer_config, cuda_available: bool = None) -> None:
    """Raise ConfigError when the strategy, precision or devices need a GPU that is not there."""
    accelerator = str(trainer_config.accelerator).lower()
    cuda = (torch.cuda.is_available() if cuda_available is None else cuda_available) and accelerator != "cpu"
    where = "the CPU accelerator is chosen" if accelerator == "cpu" else "no CUDA GPU is visible"
    strategy = _strategy_name(trainer_config.strategy)
    if strategy in GPU_ONLY_STRATEGIES and not cuda:
        raise ConfigError(
            f"strategy '{strategy}' ({GPU_ONLY_STRATEGIES[strategy]}) runs on CUDA GPUs only and {where}; "
            "use --trainer.strategy=ddp or auto on this machine"
        )
    if strategy == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        raise ConfigError("strategy 'deepspeed' needs the deepspeed package: pip install deepspeed")
    precision = str(trainer_config.precision)
    if precision in ("16-mixed", "16", "16-true") and not cuda:
        raise ConfigError(
            f"precision '{precision}' needs a CUDA GPU and {where}; "
            "use --trainer.precision=bf16-mixed (mixed precision on CPU) or 32-true"
        )
    devices = trainer_config.devices
    gpu_ids = isinstance(devices, list) or (isinstance(devices, str) and "," in devices)
    if not cuda and (accelerator in ("gpu", "cuda") or gpu_ids):
        raise ConfigError(
            f"accelerator '{accelerator}' with devices {devices!r} asks for GPUs and {where}; "
            "use --trainer.accelerator=cpu --trainer.devices=1 (or a count) on this machine"
        )
    if not cuda and str(devices) == "-1":  # Lightning's "every device" exists for GPUs only
        raise ConfigError(
            f"devices -1 (every GPU) needs CUDA GPUs and {where}; "
            "use --trainer.devices=1 (or a count of CPU processes) on this machine"
        )


def check_callbacks(trainer_config) -> None:
    """Raise ConfigError when a callback that logs (e.g. from a config/debug preset) has no logger to log to."""
    if trainer_config.logger is not False and trainer_config.logger != []:
        return  # None means Lightning's default logger
    for callback in trainer_config.callbacks or []:
        if _class_name(callback) in CALLBACKS_NEEDING_A_LOGGER:
            raise ConfigError(
                f"callback {_class_name(callback)} logs through the logger and trainer.logger is false; "
                "choose a logger (trainer.logger) or drop the callback"
            )
