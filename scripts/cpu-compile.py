"""Whether `torch.compile` pays on a CPU: the engine's train step (ecgbench.perf.measure.train_step), eager vs
compiled, fp32 and bf16, median of 5 interleaved steps after a warm-up; the first compiled step (the compile) is
reported on its own. The study does not compile on a CPU: a cell trains for seconds, a compile costs more.

    .venv/bin/python scripts/cpu-compile.py
"""
import statistics
import time

import torch

from ecgbench.models import build_model
from ecgbench.perf.measure import N_CLASSES, random_batch, train_step

torch.set_num_threads(2)
device = torch.device("cpu")
STEPS = 5
for model_name, batch in (("resnet1d18", 16), ("resnet1d18", 64), ("lstm", 64)):
    for precision in ("fp32", "bf16"):
        x, y = random_batch(batch, device)
        steps, compile_s = {}, None
        for compiled in (False, True):
            torch.manual_seed(0)
            model = build_model(model_name, N_CLASSES)
            step = train_step(model, device, precision=precision, compile_model=compiled)
            t = time.perf_counter()
            step(x, y)  # warm-up (compiles)
            if compiled:
                compile_s = time.perf_counter() - t
            step(x, y)
            steps[compiled] = step
        times = {False: [], True: []}
        for _ in range(STEPS):
            for compiled in (False, True):
                t = time.perf_counter()
                steps[compiled](x, y)
                times[compiled].append(time.perf_counter() - t)
        eager, comp = statistics.median(times[False]), statistics.median(times[True])
        print(f"{model_name} batch {batch} {precision}: eager {eager * 1000:.0f} ms, compiled {comp * 1000:.0f} ms, "
              f"speed-up {eager / comp:.2f}x, first compiled step {compile_s:.0f} s", flush=True)
