"""Random machine interruptions: the down intervals of every machine, drawn once per episode."""

from __future__ import annotations

import numpy as np

from schedgym.envs.jobshop.instance import JobShopInstance


def draw_downtime(instance: JobShopInstance, interruption_rate: float, mean_repair_time: float, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """``(machine, start, end)`` down intervals: Poisson breakdowns at ``interruption_rate`` per machine per time
    unit, exponential repair times of mean ``mean_repair_time``, drawn up to twice the instance's total work (far
    beyond any schedule a dispatcher builds). None at rate 0."""
    if interruption_rate <= 0:
        return []
    downtime = []
    horizon = 2 * int(instance.durations.sum())
    for machine in range(instance.n_machines):
        t = 0
        while True:
            t += max(1, int(round(rng.exponential(1.0 / interruption_rate))))
            if t >= horizon:
                break
            repair = max(1, int(round(rng.exponential(mean_repair_time))))
            downtime.append((machine, t, t + repair))
            t += repair
    return downtime
