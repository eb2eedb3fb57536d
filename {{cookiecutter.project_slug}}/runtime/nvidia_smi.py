"""What nvidia-smi says of this machine's GPUs: index, UUID, utilisation and memory in use.

Standard library only: sh/run.py checks its --gpus against it (and CUDA_VISIBLE_DEVICES) without
importing torch, and runtime/gpus.py ranks the GPUs by it.
"""
import subprocess
from dataclasses import dataclass
from typing import Optional

NVIDIA_SMI_QUERY = ["nvidia-smi", "--query-gpu=index,uuid,utilization.gpu,memory.used", "--format=csv,noheader,nounits"]


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
