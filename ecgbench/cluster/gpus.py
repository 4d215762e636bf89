"""Several cells per GPU: which device an xdist worker uses, and how many workers share one device.

One 1-D ResNet or RNN cell keeps an H200 busy for a few per cent of its arithmetic (kernel launches dominate), so
K workers per GPU overlap their launches. K is never chosen so that K cells' peak memory overflows the device:
the peak per cell comes from stored records (``environment.peak_gpu_mb``), the free memory from the device.
"""
from __future__ import annotations

import math
import os

MAX_CELLS_PER_GPU = 8  # past this, CPU cores (one per worker) run out before the GPU does
MEMORY_HEADROOM = 0.8  # share of the free memory K cells may take (allocator fragmentation, cuDNN workspaces)


def worker_device(worker_id: str, visible_gpus: int) -> str | None:
    """Round-robin GPU of an xdist worker ("gw3" -> cuda:3 % visible); None without GPUs.

    ``visible_gpus`` is what torch sees, so ``CUDA_VISIBLE_DEVICES`` is respected. With K x G workers every GPU
    gets exactly K of them.
    """
    if visible_gpus < 1 or not worker_id.startswith("gw"):
        return None
    return f"cuda:{int(worker_id[2:]) % visible_gpus}"


def cells_per_gpu(free_mb: float, peak_cell_mb: float | None, cap: int = MAX_CELLS_PER_GPU) -> int:
    """How many cells fit on one device at once: 1 when no cell's peak was measured yet (never a guess)."""
    if peak_cell_mb is None or peak_cell_mb <= 0:
        return 1
    return max(1, min(cap, math.floor(MEMORY_HEADROOM * free_mb / peak_cell_mb)))


def check_workers(workers: int, gpus: int, per_gpu: int) -> str | None:
    """Why ``workers`` xdist workers would put more than ``per_gpu`` cells on one of ``gpus`` devices, or None."""
    if gpus < 1 or workers <= gpus * per_gpu:
        return None
    return (f"-n {workers} puts {math.ceil(workers / gpus)} cells on one GPU, more than --ecg-cells-per-gpu "
            f"{per_gpu} allows on {gpus} GPU(s): use -n {gpus * per_gpu} (or -n auto)")


def visible_gpus() -> int:
    """The GPUs torch sees (``CUDA_VISIBLE_DEVICES`` respected), 0 without CUDA."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def share_machine(worker_id: str, workers: int) -> str | None:
    """For one of ``workers`` xdist workers on C cores: C/N torch threads, and its own GPU when there are GPUs."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    return worker_device(worker_id, visible_gpus())


def cells_per_gpu_here(peaks_mb: list[float], gpus: int) -> int:
    """``cells_per_gpu`` for the least free of ``gpus`` devices and the largest of the cells' peaks."""
    import torch

    free_mb = min(torch.cuda.mem_get_info(i)[0] for i in range(gpus)) / 2**20
    return cells_per_gpu(free_mb, max(peaks_mb, default=None))
