"""``schedgym calibrate --device cuda``: kernel fits for jobshop replays, and a measured latency table for the
socdag simulator.

The socdag table: every task type of the built-in catalogue runs its kernel kind (:func:`socdag_kernel_kinds`) with
a fixed number of items, chosen so that on a big core it lasts the hand-written big-core latency times
``time_scale``; that same kernel is then timed on the partition of every PE type that supports the task type.
The table holds those times divided by ``time_scale``, so the simulator runs in the catalogue's units and a replay
with the same ``time_scale`` runs the very kernels that were timed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict

import numpy as np
import torch

from schedgym.atomic import atomic_write_text
from schedgym.envs.socdag import PE_TYPES, TASK_TYPES, application_instance
from schedgym.envs.socdag.catalog import LATENCY_US
from schedgym.replay.cuda import JOBSHOP_LAYOUT, SOCDAG_LAYOUT, CudaKernelProfile, CudaKernels, calibrate_cuda, time_launch_us
from schedgym.replay.partitions import partitions_for
from schedgym.replay.plan import socdag_kernel_kinds

#: Wall microseconds per simulated socdag microsecond on the GPU (a 4 us task runs 80 us of kernels).
SOCDAG_TIME_SCALE = 20.0
#: Wall microseconds per jobshop time unit on the GPU (Taillard's 1..99 become 40 us..4 ms).
JOBSHOP_TIME_SCALE = 40.0


def calibrate_jobshop(out: str | os.PathLike, *, repeats: int = 7) -> CudaKernelProfile:
    """Fit every kernel kind on a machine's partition and write the profile to ``out``."""
    profile = calibrate_cuda(list(JOBSHOP_LAYOUT.values()), repeats=repeats)
    profile.save(out)
    return profile


def calibrate_socdag(out: str | os.PathLike, *, time_scale: float = SOCDAG_TIME_SCALE, repeats: int = 7) -> dict:
    """Measure the socdag latency table on this GPU and write it (with the kernel fits it used) to ``out``."""
    profile = calibrate_cuda(list(SOCDAG_LAYOUT.values()), repeats=repeats)
    kinds = socdag_kernel_kinds(application_instance("wifi_tx"))
    partitions = dict(zip(SOCDAG_LAYOUT, partitions_for(tuple((spec.sms, -1) for spec in SOCDAG_LAYOUT.values()))))
    kernels = CudaKernels(torch.device("cuda"))
    big = SOCDAG_LAYOUT["big"]
    table = np.full(LATENCY_US.shape, np.nan)
    task_kernels = {}
    for k, task_type in enumerate(TASK_TYPES):
        items = profile.items_for(kinds[k], big.implementation, big.sms, LATENCY_US[k, PE_TYPES.index("big")] * time_scale)
        task_kernels[task_type] = [kinds[k], items]
        for p, pe in enumerate(PE_TYPES):
            if np.isnan(LATENCY_US[k, p]):
                continue
            partition = partitions[pe]
            out_buffers = kernels.outputs_for(p)
            table[k, p] = time_launch_us(kernels, partition, kinds[k], SOCDAG_LAYOUT[pe].implementation, items, out_buffers, repeats) / time_scale
    document = {
        "task_type_names": list(TASK_TYPES), "pe_type_names": list(PE_TYPES),
        "latency_us": [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in table],
        "time_scale": time_scale, "task_kernels": task_kernels,
        "layout": {pe: asdict(spec) for pe, spec in SOCDAG_LAYOUT.items()},
        "gpu": profile.gpu,
        "method": f"each task type's kernel ({{kind, items}} in task_kernels) timed on each supporting PE type's partition "
                  f"(layout; sms 0: the SMs left after the split into groups of 8), launches queued back to back ({repeats} per CUDA-event timing, median of 3, after a warm-up), "
                  f"divided by time_scale; items sized to the hand-written big-core latency",
        "profile": asdict(profile),
    }
    atomic_write_text(out, json.dumps(document, indent=1) + "\n")
    return document
