"""Replay of a memory map: the traced program's ops run real kernels on buffers placed where the map says.

Fast memory is one arena and every fast buffer is a view of it at its offset, so the packing is real (two buffers
live at once never share bytes; the validator checks that before a replay). Slow memory holds every slow buffer at
an offset of its own. Each op reads the bytes it accesses of each buffer (a float32 sum over the buffer's first
``min(bytes, size)`` bytes, repeated when it accesses more than the buffer holds), and computes its FLOPs as a
bfloat16 GEMM of ``rows x 1024`` by ``1024 x 1024`` (``rows`` from the FLOPs) beside its reads, so an op lasts
about the longer of the two, as in the roofline model.

* ``cuda``: the arena is device memory (HBM); slow memory is pinned host memory that kernels read in place over
  PCIe (zero-copy: the pinned allocation's device-visible address wrapped as a CUDA tensor). Reads and the GEMM
  run on two streams, joined after every op; the whole program is captured once in a CUDA graph and replayed,
  timed with CUDA events.
* ``cpu``: numpy arrays; a slow buffer is read through a 64 KiB bounce buffer, chunk by chunk, as over a narrow
  link; the GEMM runs after the reads (one thread). It checks the program's logic; fidelity figures come from
  ``cuda``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from schedgym.envs.memmap import MemMapInstance, MemMapSolution
from schedgym.envs.memmap.solution import SLOW, op_times_s, validate
from schedgym.envs.memmap.tracer import PEAK_FLOPS
from schedgym.replay.device import resolve_device

GEMM_INNER = 1024  # the compute GEMM is [rows, 1024] @ [1024, 1024]
READ_GRAIN_BYTES = 16  # reads cover whole float32 quadruples (buffers under 16 bytes: their whole float32s)
BOUNCE_BYTES = 64 * 1024


@dataclass(frozen=True)
class OpProgram:
    """What each op does: ``reads[op]`` lists ``(buffer, byte_count, repeats)``; ``gemm_rows[op]`` sizes its GEMM."""

    reads: list[list[tuple[int, int, int]]]
    gemm_rows: np.ndarray  # int [n_ops], 0 = no compute

    @classmethod
    def of(cls, instance: MemMapInstance) -> "OpProgram":
        reads: list[list[tuple[int, int, int]]] = [[] for _ in range(instance.n_ops)]
        for op, buffer, accessed in zip(instance.access_op.tolist(), instance.access_buffer.tolist(), instance.access_bytes.tolist()):
            size = int(instance.size_bytes[buffer])
            count = min(int(accessed), size) // READ_GRAIN_BYTES * READ_GRAIN_BYTES or size // 4 * 4
            if count:
                reads[op].append((buffer, count, max(1, round(accessed / size))))
        rows = np.ceil(instance.op_compute_s * PEAK_FLOPS / (2.0 * GEMM_INNER * GEMM_INNER)).astype(np.int64)
        return cls(reads, rows)


def _slow_homes(instance: MemMapInstance) -> tuple[np.ndarray, int]:
    """Offset of every buffer in slow memory (each its own 256-byte-aligned range) and the bytes needed."""
    padded = (instance.size_bytes + 255) // 256 * 256
    homes = np.concatenate([[0], np.cumsum(padded)[:-1]])
    return homes, int(padded.sum())


def replay_mapping(instance: MemMapInstance, solution: MemMapSolution, *, device: str = "cpu", repeats: int = 10) -> float:
    """Measured program time (s, median of ``repeats`` runs after a warm-up) of ``instance`` under ``solution``.

    Raises:
        ValueError: an unknown device, a packing instance, or a map the validator rejects (its first violation).
        RuntimeError: ``cuda`` where there is no CUDA device.
    """
    resolve_device(device)
    if instance.packing:
        raise ValueError(f"{instance.name} is a packing instance: it has no program to run; replay a traced model")
    violations = validate(instance, solution)
    if violations:
        raise ValueError(f"the map is not valid for {instance.name}, so it cannot be replayed: {violations[0]}")
    program = OpProgram.of(instance)
    if device == "cuda":
        return _replay_cuda(instance, solution, program, repeats)
    return _replay_cpu(instance, solution, program, repeats)


def _replay_cpu(instance: MemMapInstance, solution: MemMapSolution, program: OpProgram, repeats: int) -> float:
    arena = np.ones(instance.capacity_bytes, dtype=np.uint8)  # 0x01010101: a tiny float32, sums stay finite
    homes, slow_bytes = _slow_homes(instance)
    slow = np.ones(slow_bytes, dtype=np.uint8)
    bounce = np.empty(BOUNCE_BYTES, dtype=np.uint8)
    weights = np.ones((GEMM_INNER, GEMM_INNER), dtype=np.float32)
    activations = np.ones((int(program.gemm_rows.max(initial=1)), GEMM_INNER), dtype=np.float32)
    offset = solution.offset

    def run() -> None:
        for op, reads in enumerate(program.reads):
            for buffer, count, times in reads:
                for _ in range(times):
                    if offset[buffer] != SLOW:
                        arena[offset[buffer] : offset[buffer] + count].view(np.float32).sum()
                        continue
                    for chunk in range(0, count, BOUNCE_BYTES):
                        n = min(BOUNCE_BYTES, count - chunk)
                        start = homes[buffer] + chunk
                        bounce[:n] = slow[start : start + n]
                        bounce[: n // 4 * 4].view(np.float32).sum()
            if program.gemm_rows[op]:
                activations[: program.gemm_rows[op]] @ weights

    run()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return float(np.median(samples))


class _DevicePointer:
    """A device-visible address as a CUDA array (``__cuda_array_interface__``), so torch can wrap it."""

    def __init__(self, pointer: int, n_bytes: int) -> None:
        self.__cuda_array_interface__ = {"shape": (n_bytes,), "typestr": "|u1", "data": (pointer, False), "version": 3}


def _zero_copy_host_bytes(n_bytes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(host, view)``: ``n_bytes`` of pinned host memory (keep ``host`` alive) and a CUDA tensor over the same
    bytes, which kernels read in place over PCIe."""
    host = torch.ones(n_bytes, dtype=torch.uint8).pin_memory()
    return host, torch.as_tensor(_DevicePointer(host.data_ptr(), n_bytes), device="cuda")


def _cuda_median_s(work: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``work`` on the current stream over ``repeats`` CUDA-event timings, after one warm-up."""
    work()
    samples = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        work()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / 1000.0)
    return float(np.median(samples))


def _replay_cuda(instance: MemMapInstance, solution: MemMapSolution, program: OpProgram, repeats: int) -> float:
    device = torch.device("cuda")
    arena = torch.ones(instance.capacity_bytes, dtype=torch.uint8, device=device)
    homes, slow_bytes = _slow_homes(instance)
    host, slow = _zero_copy_host_bytes(slow_bytes)
    weights = torch.ones(GEMM_INNER, GEMM_INNER, dtype=torch.bfloat16, device=device)
    activations = torch.ones(int(program.gemm_rows.max(initial=1)), GEMM_INNER, dtype=torch.bfloat16, device=device)
    gemm_out = torch.empty_like(activations)
    sums = torch.empty(max(len(r) for r in program.reads) or 1, dtype=torch.float32, device=device)
    views = [
        (arena[o : o + int(size)] if o != SLOW else slow[int(homes[b]) : int(homes[b] + size)])
        for b, (o, size) in enumerate(zip(solution.offset.tolist(), instance.size_bytes.tolist()))
    ]
    compute = torch.cuda.Stream()

    def run() -> None:
        for op, reads in enumerate(program.reads):
            if program.gemm_rows[op]:
                compute.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(compute):
                    torch.mm(activations[: program.gemm_rows[op]], weights, out=gemm_out[: program.gemm_rows[op]])
            for slot, (buffer, count, times) in enumerate(reads):
                data = views[buffer][:count].view(torch.float32)
                for _ in range(times):
                    torch.sum(data, dim=0, out=sums[slot])
            if program.gemm_rows[op]:
                torch.cuda.current_stream().wait_stream(compute)

    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        run()  # warm-up outside the graph (library handles, workspaces)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run()
    runtime_s = _cuda_median_s(graph.replay, repeats)
    del graph, host
    return runtime_s


@dataclass(frozen=True)
class MemoryRates:
    """Rates measured on the replay's own kernels: ``fast_bw`` / ``slow_bw`` (bytes/s of a float32 sum over 64 MiB
    in the arena / in zero-copy host memory), ``gemm_flops`` (FLOP/s of the compute GEMM at 1,024 rows) and
    ``kernel_overhead_s`` (time per kernel of a CUDA graph of 256 sums over 16 bytes: the launch cost)."""

    fast_bw_bytes_per_s: float
    slow_bw_bytes_per_s: float
    gemm_flops_per_s: float
    kernel_overhead_s: float

    def runtime_s(self, instance: MemMapInstance, solution: MemMapSolution) -> float:
        """The roofline runtime under these rates plus the launch cost of every kernel the replay runs (one per read
        and one GEMM per op that computes): the cost model calibrated to this GPU."""
        program = OpProgram.of(instance)
        kernels = sum(times for reads in program.reads for _, _, times in reads) + int((program.gemm_rows > 0).sum())
        fast = np.asarray(solution.offset) != SLOW
        return float(op_times_s(self.apply(instance), fast).sum()) + kernels * self.kernel_overhead_s

    def apply(self, instance: MemMapInstance) -> MemMapInstance:
        """``instance`` with the cost model's bandwidths and compute times set from these rates."""
        flops = instance.op_compute_s * PEAK_FLOPS
        return dataclasses.replace(
            instance, fast_bw_bytes_per_s=self.fast_bw_bytes_per_s, slow_bw_bytes_per_s=self.slow_bw_bytes_per_s,
            op_compute_s=flops / self.gemm_flops_per_s,
        )


def measure_memory_rates(repeats: int = 10) -> MemoryRates:
    """Measure :class:`MemoryRates` on the current CUDA device (CUDA events, median of ``repeats``)."""
    resolve_device("cuda")
    n_bytes = 1 << 26
    arena = torch.ones(n_bytes, dtype=torch.uint8, device="cuda")
    host, slow = _zero_copy_host_bytes(n_bytes)
    weights = torch.ones(GEMM_INNER, GEMM_INNER, dtype=torch.bfloat16, device="cuda")
    activations = torch.ones(GEMM_INNER, GEMM_INNER, dtype=torch.bfloat16, device="cuda")
    fast_s = _cuda_median_s(lambda: arena.view(torch.float32).sum(), repeats)
    slow_s = _cuda_median_s(lambda: slow.view(torch.float32).sum(), repeats)
    gemm_s = _cuda_median_s(lambda: torch.mm(activations, weights), repeats)
    tiny, sums, n_kernels = arena[:16].view(torch.float32), torch.empty(256, device="cuda"), 256
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        torch.sum(tiny, dim=0, out=sums[0])
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for k in range(n_kernels):
            torch.sum(tiny, dim=0, out=sums[k])
    overhead_s = _cuda_median_s(graph.replay, repeats) / n_kernels
    return MemoryRates(n_bytes / fast_s, n_bytes / slow_s, 2.0 * GEMM_INNER**3 / gemm_s, overhead_s)
