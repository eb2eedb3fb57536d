"""Speed settings that depend on the machine, applied once by main.py before anything is built."""
import torch


def trains_on_cuda(trainer_config, cuda_available: bool = None) -> bool:
    """True when the trainer's accelerator resolves to CUDA GPUs (``auto`` picks them when any is visible)."""
    accelerator = str(trainer_config.accelerator).lower()
    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available  # NVML: does not start CUDA
    return cuda and accelerator in ("auto", "gpu", "cuda")


def use_tensor_cores(trainer_config, cuda_available: bool = None) -> bool:
    """On CUDA GPUs let float32 matrix products use TF32 tensor cores: ``set_float32_matmul_precision("high")``.

    On Ampere and newer GPUs this makes float32 training several times faster (products with a 10-bit
    mantissa, float32 accumulation: no measurable effect on classification accuracy); older GPUs have no
    TF32 and are unaffected. CPUs are left alone, where "high" could allow bfloat16 products. An explicit
    choice made earlier in the process (anything but the default "highest") is kept. Returns whether it was set.
    """
    if not trains_on_cuda(trainer_config, cuda_available) or torch.get_float32_matmul_precision() != "highest":
        return False
    torch.set_float32_matmul_precision("high")
    return True
