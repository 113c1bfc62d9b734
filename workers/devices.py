"""Pinning a worker process to one accelerator through the platform's variable."""

from __future__ import annotations

import importlib.util

#: The variable each platform's runtime reads to choose its visible devices.
PIN_VARIABLE = {"npu": "ASCEND_RT_VISIBLE_DEVICES", "gpu": "CUDA_VISIBLE_DEVICES", "cpu": "CATO_CPU_DEVICE"}
PLATFORMS = ("auto", *PIN_VARIABLE)


def detect_platform() -> str:
    """npu when the Ascend stack is installed, gpu when CUDA is usable, else cpu."""
    if importlib.util.find_spec("torch_npu") is not None:
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
    """Environment that makes ``device`` the only one the process sees."""
    return {PIN_VARIABLE[platform]: device}
