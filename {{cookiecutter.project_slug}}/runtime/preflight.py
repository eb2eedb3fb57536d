"""Checks and settings made before anything is built: a choice this machine cannot run, or an MLflow tracking
server that does not answer, stops with one clear line, ``devices: N`` picks the N least-busy GPUs, and float32
matmuls use tensor cores on CUDA.

Imports torch only inside the functions that need it: sh/run.py checks its ``--gpus`` against the
``nvidia-smi`` query here without paying for torch.
"""
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, Optional

from contract import ConfigError

from .errors import masked
from .run_folder import class_name, logger_configs

os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # CUDA device i == nvidia-smi index i

GPU_ONLY_STRATEGIES = {"fsdp": "FSDP", "deepspeed": "DeepSpeed"}
CALLBACKS_NEEDING_A_LOGGER = ("DeviceStatsMonitor", "LearningRateMonitor")
SELECTED_GPUS_ENV = "RESEARCH_SELECTED_GPUS"  # the launching process's choice, read by its DDP workers
NVIDIA_SMI_QUERY = ["nvidia-smi", "--query-gpu=index,uuid,utilization.gpu,memory.used", "--format=csv,noheader,nounits"]


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()  # asks NVML: does not start CUDA


def trains_on_cuda(trainer_config, cuda_available: Optional[bool] = None) -> bool:
    """True when the trainer's accelerator resolves to CUDA GPUs (``auto`` picks them when any is visible)."""
    cuda = has_cuda() if cuda_available is None else cuda_available
    return cuda and str(trainer_config.accelerator).lower() in ("auto", "gpu", "cuda")


# ----------------------------------------------------------------------------- what this machine can run

def _strategy_name(strategy) -> str:
    if isinstance(strategy, str):
        return strategy.split("_")[0].lower()
    path = str(getattr(strategy, "class_path", "")).lower()
    return next((key for key in GPU_ONLY_STRATEGIES if key in path), path)


def check_hardware(trainer_config, cuda_available: Optional[bool] = None) -> None:
    """ConfigError when the strategy, precision or devices need a GPU that is not there."""
    accelerator = str(trainer_config.accelerator).lower()
    cuda = (has_cuda() if cuda_available is None else cuda_available) and accelerator != "cpu"
    where = "the CPU accelerator is chosen" if accelerator == "cpu" else "no CUDA GPU is visible"
    strategy = _strategy_name(trainer_config.strategy)
    if strategy in GPU_ONLY_STRATEGIES and not cuda:
        raise ConfigError(f"strategy '{strategy}' ({GPU_ONLY_STRATEGIES[strategy]}) runs on CUDA GPUs only and "
                          f"{where}; use --trainer.strategy=ddp or auto on this machine")
    if strategy == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        raise ConfigError("strategy 'deepspeed' needs the deepspeed package: pip install deepspeed")
    precision = str(trainer_config.precision)
    if precision in ("16-mixed", "16", "16-true") and not cuda:
        raise ConfigError(f"precision '{precision}' needs a CUDA GPU and {where}; "
                          "use --trainer.precision=bf16-mixed (mixed precision on CPU) or 32-true")
    devices = trainer_config.devices
    gpu_ids = isinstance(devices, list) or (isinstance(devices, str) and "," in devices)
    if not cuda and (accelerator in ("gpu", "cuda") or gpu_ids):
        raise ConfigError(f"accelerator '{accelerator}' with devices {devices!r} asks for GPUs and {where}; "
                          "use --trainer.accelerator=cpu --trainer.devices=1 (or a count) on this machine")
    if not cuda and str(devices) == "-1":  # Lightning's "every device" exists for GPUs only
        raise ConfigError(f"devices -1 (every GPU) needs CUDA GPUs and {where}; "
                          "use --trainer.devices=1 (or a count of CPU processes) on this machine")


def check_callbacks(trainer_config) -> None:
    """ConfigError when a callback that logs (e.g. from a config/debug preset) has no logger to log to."""
    if trainer_config.logger is not False and trainer_config.logger != []:
        return  # None means Lightning's default logger
    for callback in trainer_config.callbacks or []:
        if class_name(callback) in CALLBACKS_NEEDING_A_LOGGER:
            raise ConfigError(f"callback {class_name(callback)} logs through the logger and trainer.logger is "
                              "false; choose a logger (trainer.logger) or drop the callback")


def check_tracking_server(trainer_config, timeout: float = 10) -> None:
    """ConfigError when an MLflow logger's tracking server (``MLFLOW_TRACKING_URI``, an http(s) address) does not
    answer: one line before training, not MLflow's minutes of retries and a traceback. Call it after the
    logger's tracking_uri is set (run_folder.route_outputs)."""
    import urllib.error
    import urllib.request

    for logger in logger_configs(trainer_config):
        uri = str(logger.init_args.get("tracking_uri") or "") if class_name(logger) == "MLFlowLogger" else ""
        if not uri.startswith(("http://", "https://")):
            continue
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
        except urllib.error.HTTPError as error:  # it answers; a proxy in front may not know /health
            if error.code < 500:
                continue
            why = f"HTTP {error.code}"
        except (urllib.error.URLError, OSError) as error:
            why = str(getattr(error, "reason", error))
        else:
            continue
        raise ConfigError(f"the MLflow tracking server {masked(uri)} (MLFLOW_TRACKING_URI) does not answer ({why}); "
                          "start it, correct the address, or unset MLFLOW_TRACKING_URI to log into res/mlflow.db")


def use_tensor_cores(trainer_config, cuda_available: Optional[bool] = None) -> bool:
    """On CUDA GPUs let float32 matrix products use TF32 tensor cores: ``set_float32_matmul_precision("high")``.

    On Ampere and newer GPUs this makes float32 training several times faster (products with a 10-bit
    mantissa, float32 accumulation: no measurable effect on classification accuracy); older GPUs have no
    TF32 and are unaffected. CPUs are left alone, where "high" could allow bfloat16 products. An explicit
    choice made earlier in the process (anything but the default "highest") is kept. Returns whether it was set.
    """
    import torch

    if not trains_on_cuda(trainer_config, cuda_available) or torch.get_float32_matmul_precision() != "highest":
        return False
    torch.set_float32_matmul_precision("high")
    return True


# ----------------------------------------------------------------------------- nvidia-smi

@dataclass(frozen=True)
class GpuStatus:
    index: int  # physical index, as nvidia-smi numbers it
    uuid: str
    utilization: float  # percent
    memory_used: float  # MiB


def parse_nvidia_smi(text: str) -> list[GpuStatus]:
    """Parse ``index, uuid, utilization.gpu, memory.used`` CSV lines; unknown values ("[N/A]") rank last."""

    def number(value: str) -> float:
        try:
            return float(value)
        except ValueError:
            return float("inf")

    gpus = []
    for line in text.strip().splitlines():
        index, uuid, utilization, memory = (field.strip() for field in line.split(","))
        gpus.append(GpuStatus(int(index), uuid, number(utilization), number(memory)))
    return gpus


def query_gpus() -> Optional[list[GpuStatus]]:
    """Every physical GPU's load from nvidia-smi, or None when nvidia-smi is missing or fails."""
    try:
        result = subprocess.run(NVIDIA_SMI_QUERY, capture_output=True, text=True, timeout=30, check=True)
        return parse_nvidia_smi(result.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def visible_gpus(gpus: list[GpuStatus], cuda_visible_devices: Optional[str]) -> Optional[list[GpuStatus]]:
    """The GPUs this process sees, in CUDA's order (list position = CUDA device id); None if unmappable."""
    if cuda_visible_devices is None:
        return sorted(gpus, key=lambda gpu: gpu.index)
    visible = []
    for entry in filter(None, (e.strip() for e in cuda_visible_devices.split(","))):
        if entry.lstrip("-").isdigit():
            if int(entry) < 0:
                break  # CUDA ignores every id from an invalid one on
            matches = [gpu for gpu in gpus if gpu.index == int(entry)]
        else:
            matches = [gpu for gpu in gpus if entry.startswith("GPU-") and gpu.uuid.startswith(entry)]
        if len(matches) != 1:
            return None  # MIG devices or an id nvidia-smi does not list: leave the choice to Lightning
        visible.append(matches[0])
    return visible


# ----------------------------------------------------------------------------- free-GPU selection

def least_busy(visible: list[GpuStatus], count: int) -> list[int]:
    """CUDA device ids of the ``count`` least-busy GPUs: lowest utilisation, then least used memory."""
    order = sorted(range(len(visible)), key=lambda i: (visible[i].utilization, visible[i].memory_used, i))
    return sorted(order[:count])


def requested_gpu_count(trainer_config, cuda_available: bool) -> Optional[int]:
    """N when the config asks for N CUDA devices by count; None for lists, ``"auto"``, ``-1`` or the CPU."""
    devices = trainer_config.devices
    if isinstance(devices, str) and devices.strip().isdigit():
        devices = int(devices)
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        return None
    accelerator = str(trainer_config.accelerator).lower()
    wants_cuda = accelerator in ("gpu", "cuda") or (accelerator == "auto" and cuda_available)
    return devices if wants_cuda and cuda_available else None


def select_gpus(trainer_config, cuda_available: Optional[bool] = None,
                query: Callable[[], Optional[list[GpuStatus]]] = query_gpus, environ=os.environ) -> Optional[list[int]]:
    """``trainer.devices: N`` on CUDA trains on the N least-busy visible GPUs, not GPUs 0..N-1.

    Replaces ``devices`` with their ids and returns them; None (config untouched) when there is nothing to
    select: no CUDA, ids or ``auto`` or ``-1``, or a launcher (torchrun, SLURM) placing the processes.
    Visible GPUs follow ``CUDA_VISIBLE_DEVICES`` (indices or UUIDs). The choice is exported in
    ``SELECTED_GPUS_ENV``, so the DDP worker processes Lightning starts train on the same GPUs.
    ConfigError when more GPUs are asked for than are visible.
    """
    count = requested_gpu_count(trainer_config, has_cuda() if cuda_available is None else cuda_available)
    if count is None:
        return None
    exported = [int(i) for i in environ.get(SELECTED_GPUS_ENV, "").split(",") if i]
    if len(exported) == count:
        chosen = exported
    else:
        from pytorch_lightning.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

        if TorchElasticEnvironment.detect() or SLURMEnvironment.detect():
            return None
        gpus = query()
        visible = None if gpus is None else visible_gpus(gpus, environ.get("CUDA_VISIBLE_DEVICES"))
        if visible is None:
            return None
        if count > len(visible):
            raise ConfigError(f"trainer.devices={count} asks for {count} GPUs but {len(visible)} are visible")
        chosen = least_busy(visible, count)
        environ[SELECTED_GPUS_ENV] = ",".join(map(str, chosen))
        print(f"Using GPUs {chosen} (the {count} least busy of {len(visible)} visible)", file=sys.stderr)
    trainer_config.devices = chosen
    return chosen


def preflight(trainer_config) -> None:
    """Everything this module does before the trainer is built, in order."""
    check_hardware(trainer_config)
    check_callbacks(trainer_config)
    select_gpus(trainer_config)
    use_tensor_cores(trainer_config)
