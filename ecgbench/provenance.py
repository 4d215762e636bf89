"""Where a result came from: code version, commit and dirty flag, library versions, device."""
from __future__ import annotations

import datetime as dt
import platform
import resource

import torch

from ecgbench import __version__
from ecgbench.codeid import git_commit, git_dirty


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()})"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def environment(device: torch.device) -> dict:
    return {
        "ecgbench": __version__,
        "commit": git_commit(),
        "dirty": git_dirty(),  # tracked files differ from the commit (None outside a checkout)
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "device_name": device_name(device),
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        **({"peak_gpu_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)} if device.type == "cuda" else {}),
    }


def utc_now() -> str:
    """The time a record or a saved run was made, in UTC to the second (comparable across hosts)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
