"""The order in which each resource (machine, PE) runs its tasks in a schedule. Shared by the jobshop disjunctive schedule (tabu search, improvement env)
and the replay plans."""

from __future__ import annotations

import numpy as np


def tasks_by_resource(resource: np.ndarray, start: np.ndarray, n_resources: int) -> list[list[int]]:
    """Task ids of every resource in start order, ties to the lower id: ``[n_resources][tasks on it]``.

    Args:
        resource: int ``[n_tasks]``, the resource of each task.
        start: ``[n_tasks]``, the start of each task (any unit).
    """
    order = np.lexsort((np.arange(len(resource)), np.asarray(start)))
    resource_of = np.asarray(resource).tolist()
    tasks: list[list[int]] = [[] for _ in range(n_resources)]
    for task in order.tolist():
        tasks[resource_of[task]].append(task)
    return tasks
