"""The machine's measured matmul ceiling: the FLOP/s a large square ``torch.mm`` reaches here and now.

Why measured, not a spec sheet: the fraction of the ceiling a model reaches should compare like with like,
the same BLAS/cuBLAS, thread count, clocks and neighbours. Best of several runs, because a ceiling is
the rate the hardware *can* reach; interference only ever lowers it.
"""
from __future__ import annotations

import time

import torch

from ecgbench.engine.precision import BF16

CPU_SIZES = (512, 1024, 2048, 4096)
CUDA_SIZES = (4096, 8192)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ceiling_dtype(precision: str) -> torch.dtype:
    """The dtype a step in the engine's ``precision`` is judged against: bf16 matmuls (AMX on a CPU that has
    it, tensor cores on a GPU) for bf16 autocast, float32 for fp32 and for the float64 baseline alike."""
    return torch.bfloat16 if precision == BF16 else torch.float32


def matmul_ceiling(device: torch.device, dtype: torch.dtype = torch.float32, repeats: int = 5,
                   sizes: tuple[int, ...] | None = None) -> float:
    """Best FLOP/s of ``torch.mm`` on square ``dtype`` matrices over ``sizes`` (2 n^3 FLOPs per product)."""
    sizes = sizes or (CUDA_SIZES if device.type == "cuda" else CPU_SIZES)
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        torch.mm(a, b)  # warm-up: library init, workspace, clocks
        _sync(device)
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            _sync(device)
            best = max(best, 2 * n ** 3 / (time.perf_counter() - start))
    return best
