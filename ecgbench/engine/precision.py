"""The numeric precision a training run computes in: float32, or bf16 autocast where the hardware has it.

Why a named choice rather than "autocast on GPUs": bf16 changes a cell's numbers (slightly), so the precision is
part of a cell's identity; and on a CPU it pays only where the CPU has native bf16 (AMX or AVX512-BF16) *and*
the model's kernels gain from it (the GRU was measured slower in bf16). The choice is made once from fixed
facts (the CPU's flags, the model's measured flag), never from a timing taken at run time, so one machine and
one configuration always give the same precision.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch

FP32, BF16 = "fp32", "bf16"
PRECISIONS = (FP32, BF16)  # what the engine runs in
POLICIES = ("auto", *PRECISIONS)  # what a profile may ask for
NATIVE_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})  # x86 flags of /proc/cpuinfo; "bf16" on aarch64
CPUINFO = Path("/proc/cpuinfo")


def check_precision(precision: str) -> str:
    """``precision`` if the engine knows it; else a ValueError naming the known ones."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    return precision


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """bf16 autocast on ``device`` for ``bf16`` (float64 tensors are left as they are), nothing for ``fp32``."""
    if check_precision(precision) == BF16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first CPU in ``/proc/cpuinfo`` text (x86 ``flags``, aarch64 ``Features``)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 natively (AMX / AVX512-BF16 on x86, the bf16 extension on aarch64).

    ``cpuinfo``: the text of ``/proc/cpuinfo`` (default: read it). Where it cannot be read (macOS, Windows) the
    answer is False: fp32, which is correct everywhere, rather than an emulated bf16 that is slower.
    """
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text()
        except OSError:
            return False
    flags = cpu_flags(cpuinfo)
    return bool(flags & NATIVE_BF16_FLAGS) or "bf16" in flags


def resolve_precision(policy: str, device: torch.device, *, bf16_faster_on_cpu: bool,
                      cpu_native_bf16: bool) -> str:
    """The precision a run of one model computes in under ``policy``.

    ``auto``: bf16 on CUDA; on a CPU bf16 only when the CPU has native bf16 and the model was measured faster
    in it (``bf16_faster_on_cpu``), fp32 otherwise. ``fp32`` and ``bf16`` are taken as asked (bf16 on a CPU
    without native support is correct, only slow).
    """
    if policy not in POLICIES:
        raise ValueError(f"precision policy {policy!r} is not one of {POLICIES}")
    if policy != "auto":
        return policy
    if device.type == "cuda":
        return BF16
    return BF16 if device.type == "cpu" and cpu_native_bf16 and bf16_faster_on_cpu else FP32
