"""A measured latency table for the socdag simulator, written by ``schedgym calibrate --problem socdag``.

The file holds ``task_type_names``, ``pe_type_names`` and ``latency_us`` (``[n_task_types][n_pe_types]``, ``null``
where a PE type cannot run the task type), plus how it was measured. Any socdag suite or instance name followed by
``@FILE`` (``socdag-static@profiles/socdag-h100.json``) runs on that table instead of the hand-written one; the
noise draws and arrivals stay as they were.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import NamedTuple

import numpy as np

from schedgym.envs.socdag.instance import SocDagInstance


class LatencyTable(NamedTuple):
    """A measured table: ``latency_us`` float ``[n_task_types, n_pe_types]`` (NaN = unsupported) over the named
    task and PE types; ``source`` is the file it came from."""

    task_type_names: tuple[str, ...]
    pe_type_names: tuple[str, ...]
    latency_us: np.ndarray
    source: str

    def fits(self, instance: SocDagInstance) -> bool:
        """Whether the table is over the instance's task and PE types."""
        return (self.task_type_names, self.pe_type_names) == (instance.task_type_names, instance.soc.pe_type_names)


def load_latency_table(path: str | os.PathLike) -> LatencyTable:
    """The table of a profile file.

    Raises:
        ValueError: the file is missing, not JSON, or lacks the table (names the command that writes one).
    """
    fix = f"write one with `schedgym calibrate --problem socdag --device cuda --out {path}`"
    try:
        data = json.loads(open(path).read())
        tasks, pes = tuple(data["task_type_names"]), tuple(data["pe_type_names"])
        table = np.array([[np.nan if v is None else float(v) for v in row] for row in data["latency_us"]])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is not a socdag latency profile ({exc}); {fix}") from None
    if table.shape != (len(tasks), len(pes)):
        raise ValueError(f"{path}: latency_us is {table.shape}, expected [{len(tasks)} task types][{len(pes)} PE types]; {fix}")
    return LatencyTable(tasks, pes, table, str(path))


def with_latency_table(instance: SocDagInstance, table: LatencyTable) -> SocDagInstance:
    """``instance`` with the expected run times of ``table``.

    Raises:
        ValueError: the table's task or PE types are not the instance's.
    """
    if not table.fits(instance):
        raise ValueError(f"{table.source} is a table for task types {table.task_type_names[:3]}... on PE types {table.pe_type_names}; instance {instance.name!r} has {instance.task_type_names[:3]}... on {instance.soc.pe_type_names}")
    return dataclasses.replace(instance, latency_us=table.latency_us, optimum_us=None, reference=f"{instance.reference}; latency table {os.path.basename(table.source)}")
