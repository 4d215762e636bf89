"""Several cells per GPU: which device an xdist worker uses, and how many workers share one device.

One 1-D ResNet or RNN cell keeps an H200 busy for a few per cent of its arithmetic (kernel launches dominate), so
K workers per GPU overlap their launches. K is never chosen so that K cells' peak memory overflows the device:
the peak per cell comes from stored records (``environment.peak_gpu_mb``), the free memory from the device.
"""
from __future__ import annotations

import math

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
