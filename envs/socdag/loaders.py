"""Reading task graphs in the Standard Task Graph (STG) format of Kasahara's group.

An STG file gives the number ``n`` of real tasks, then ``n + 2`` lines (a dummy entry task 0 and exit task
``n + 1`` included) ``id  processing_time  n_predecessors  predecessor ids...``; lines after the graph (and
blank lines) are comments. STG graphs are homogeneous and carry no data volumes: each task becomes its own
task type whose latency is its processing time (in us) times the PE type's slowdown, on CPU PE types only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from schedgym.envs.errors import InstanceFormatError
from schedgym.envs.socdag.catalog import DEFAULT_SOC
from schedgym.envs.socdag.instance import SocDagInstance, SocSpec, TaskGraph

#: How much slower each default-SoC PE type runs generic STG work than a big core (NaN: cannot run it).
STG_SLOWDOWN = {"big": 1.0, "little": 2.3, "fft": np.nan, "mm": np.nan, "viterbi": np.nan}


def parse_stg(text: str, name: str = "stg", path: str = "<text>") -> tuple[TaskGraph, np.ndarray]:
    """STG text -> (task graph, processing time ``[n_tasks]`` per task, dummies included).

    Raises:
        InstanceFormatError: naming the line and what is wrong.
    """
    lines = [(i + 1, line.split()) for i, line in enumerate(text.splitlines()) if line.strip() and not line.lstrip().startswith("#")]
    fix = "the first line is the number of tasks n, then n + 2 lines 'id time n_preds preds...' (STG format)"
    if not lines:
        raise InstanceFormatError(path, None, "the file is empty", fix)
    line_no, head = lines[0]
    try:
        n = int(head[0])
    except ValueError:
        raise InstanceFormatError(path, line_no, f"expected the number of tasks, found {head[0]!r}", fix) from None
    if n < 0 or len(lines) < n + 3:
        raise InstanceFormatError(path, line_no, f"{n} tasks announced but only {len(lines) - 1} task lines follow", fix)
    times, edges = [], []
    for expected_id, (line_no, fields) in enumerate(lines[1 : n + 3]):
        try:
            values = [int(v) for v in fields]
        except ValueError:
            raise InstanceFormatError(path, line_no, f"non-integer field in {' '.join(fields)!r}", fix) from None
        if len(values) < 3 or values[0] != expected_id:
            raise InstanceFormatError(path, line_no, f"expected task {expected_id} as 'id time n_preds preds...'", fix)
        task, time, n_preds, preds = values[0], values[1], values[2], values[3:]
        if time < 0 or len(preds) != n_preds:
            raise InstanceFormatError(path, line_no, f"task {task}: time must be >= 0 and exactly {n_preds} predecessors listed", fix)
        if any(not 0 <= p < n + 2 or p == task for p in preds):
            raise InstanceFormatError(path, line_no, f"task {task}: predecessor out of range [0, {n + 1}] or itself", fix)
        times.append(time)
        edges += [(p, task) for p in preds]
    edge_array = np.array(edges, dtype=np.int64).reshape(-1, 2)
    try:
        graph = TaskGraph(name, np.arange(n + 2), edge_array, np.zeros(len(edges)))
    except ValueError as exc:
        raise InstanceFormatError(path, None, str(exc), "the predecessor lists must form a DAG") from None
    return graph, np.array(times, dtype=float)


def load_stg(path: str | os.PathLike, soc: SocSpec = DEFAULT_SOC) -> SocDagInstance:
    """An STG file as a static instance on ``soc`` (PE types named as in :data:`STG_SLOWDOWN`)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InstanceFormatError(str(path), None, f"cannot read the file ({exc.strerror})", "pass an existing .stg file") from None
    graph, times = parse_stg(text, path.stem, str(path))
    slowdown = np.array([STG_SLOWDOWN.get(t, np.nan) for t in soc.pe_type_names])
    latency = times[:, None] * slowdown[None, :]
    return SocDagInstance(
        path.stem, soc, tuple(f"t{i}" for i in range(graph.n_tasks)), latency, (graph,), np.array([0]), np.array([0.0]),
        reference=f"STG file {path.name}",
    )
