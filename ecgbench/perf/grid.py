"""How long a profile's whole grid takes on a device, extrapolated from measured per-step times.

Why extrapolate: the ``paper`` grid is hundreds of cells of 100 epochs; nobody runs it to learn its cost.
Each task's work (``ecgbench.cluster.cost.task_work``: samples trained and inferred, the same count the shard
balance uses; a linear probe's training counts as forwards) is cut into batches of the profile's size, each
costing the measured train-step or inference time of its model. Simplifications: early stopping is ignored,
data loading is free (see the loader-stall measurement), partial batches are rounded up once per task.
``ecgbench.cluster.capacity`` does the same from measured per-cell times instead, and adds the schedule on
several GPUs.
"""
from __future__ import annotations

import math

from ecgbench.cluster.cost import task_work
from ecgbench.study import Pretraining, Profile, enumerate_cells, iter_upstream_needs


def grid_seconds(profile: Profile, step_s: dict[str, float], infer_s: dict[str, float]) -> float:
    """Seconds for every cell and upstream checkpoint of ``profile``, from per-model step and inference times.

    ``step_s`` / ``infer_s`` hold the median seconds of one train step / inference batch per model, measured
    at the profile's batch size.
    """
    cells = enumerate_cells(profile)
    total = 0.0
    for task in [*iter_upstream_needs(cells), *cells]:
        work = task_work(profile, task)
        batch = (profile.pretrain if isinstance(task, Pretraining) else profile.train).batch_size
        total += (math.ceil(work.train_samples / batch) * step_s[task.model]
                  + math.ceil(work.infer_samples / batch) * infer_s[task.model])
    return total
