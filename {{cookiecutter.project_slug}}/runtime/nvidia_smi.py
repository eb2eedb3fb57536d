"""What nvidia-smi says of this machine's GPUs: index, UUID, utilisation and memory in use.

Standard library only: sh/run.py checks its --gpus against it without importing torch, and
runtime/gpus.py ranks the GPUs by it.
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
