"""The CPU backend of a replay: one thread per resource, each running its tasks' kernels in order; a task waits
for its predecessors through events and for its release and transfer delays by the clock."""

from __future__ import annotations

import threading
import time

import numpy as np

from schedgym.replay.kernels import CpuKernels, KernelProfile
from schedgym.replay.plan import ReplayPlan


def replay_on_cpu(plan: ReplayPlan, profile: KernelProfile, kernels: CpuKernels | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run ``plan``; returns the measured ``(start_us, end_us)`` float arrays ``[n_tasks]``, from the replay's start.

    A task of duration ``d`` runs ``round(d / profile.unit_us[kind])`` kernel units (at least one when ``d > 0``).
    With more resources than cores the threads share the cores, and the measured times stretch accordingly.
    """
    kernels = kernels or CpuKernels()
    units = [max(int(d > 0), round(d / profile.unit_us[k])) for d, k in zip(plan.duration_us, plan.kind)]
    start_us = np.full(plan.n_tasks, np.nan)
    end_us = np.full(plan.n_tasks, np.nan)
    finished = [threading.Event() for _ in range(plan.n_tasks)]
    errors: list[BaseException] = []
    origin = time.perf_counter()

    def now_us() -> float:
        return (time.perf_counter() - origin) * 1e6

    def run_resource(tasks: list[int]) -> None:
        try:
            for t in tasks:
                ready_us = plan.release_us[t]
                for p, delay_us in plan.predecessors[t]:
                    finished[p].wait()
                    ready_us = max(ready_us, end_us[p] + delay_us)
                wait_us = ready_us - now_us()
                if wait_us > 0:
                    time.sleep(wait_us / 1e6)
                start_us[t] = now_us()
                kernels.run(plan.kind[t], units[t])
                end_us[t] = now_us()
                finished[t].set()
        except BaseException as exc:  # surfaced in the caller's thread below
            errors.append(exc)
            for event in finished:
                event.set()

    threads = [threading.Thread(target=run_resource, args=(tasks,), daemon=True) for tasks in plan.order if tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return start_us, end_us
