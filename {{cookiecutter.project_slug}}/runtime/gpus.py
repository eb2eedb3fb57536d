"""Free-GPU selection: ``trainer.devices: N`` on CUDA trains on the N least-busy visible GPUs, not GPUs 0..N-1.

GPUs are ranked by utilisation, then used memory, from one ``nvidia-smi`` query. Visible GPUs follow
``CUDA_VISIBLE_DEVICES`` (physical indices or UUIDs); CUDA numbers GPUs in PCI bus order, as nvidia-smi
does, because importing this module sets ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` unless it is set already.

The process that selects exports its choice in ``SELECTED_GPUS_ENV``; the DDP worker processes Lightning
starts (they re-run main.py with the same arguments) read it, so every rank trains on the same GPUs.
Under torchrun or SLURM the launcher places the processes, so nothing is selected. Nothing happens on
a machine without CUDA, or when ``devices`` is a list of ids, ``"0,1"``, ``"auto"`` or ``-1``.
"""
import os
import sys
from typing import Callable, Optional

import torch
from pytorch_lightning.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

from .checks import ConfigError
from .nvidia_smi import GpuStatus, query_gpus, visible_gpus

os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # CUDA device i == nvidia-smi index i

SELECTED_GPUS_ENV = "RESEARCH_SELECTED_GPUS"


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
    """Replace ``trainer_config.devices = N`` with the ids of the N least-busy visible GPUs; return them.

    Returns None (config untouched) when there is nothing to select; raises ConfigError when more
    GPUs are asked for than are visible.
    """
    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    count = requested_gpu_count(trainer_config, cuda)
    if count is None:
        return None
    exported = [int(i) for i in environ.get(SELECTED_GPUS_ENV, "").split(",") if i]
    if len(exported) == count:
        chosen = exported
    elif TorchElasticEnvironment.detect() or SLURMEnvironment.detect():
        return None
    else:
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
