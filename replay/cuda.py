"""The CUDA backend of a replay: every machine or PE is a disjoint SM partition with its own stream, every task a
real kernel sized to its duration, every dependency a CUDA event, every start and end a CUDA event timing.

How a plan runs:

* Each resource gets a partition (:mod:`schedgym.replay.partitions`) of the SM count and *implementation* its type
  asks for (:class:`PartitionSpec`): ``core`` kernels compute in float32 on CUDA cores (a general-purpose core:
  GEMM without tensor cores, the FFT as a dense DFT product), ``accel`` kernels use the fast path of their kind
  (TF32 tensor-core GEMM, cuFFT), as an accelerator does. (bfloat16 GEMMs failed in cuBLAS on some partitions.)
* A task runs ``items`` items of its kernel kind (:class:`CudaKernels`), at most ``CHUNK_ITEMS[kind]`` per launch;
  ``items`` comes from the duration and the partition's fitted launch and item times (:class:`CudaKernelProfile`).
  Elementwise and reduction inputs are one 1 MiB row repeated (a stride-0 view), so they stay in L2: partitions
  streaming from HBM at once slow each other down (measured: an elementwise kernel on 8 SMs took 1.8x longer
  with 14 other partitions streaming), which the simulators do not model.
* The whole plan is enqueued before any of it runs: every stream first waits on a *gate* event that a sleep kernel
  on a side stream records once the host has enqueued everything, so host launch overhead never delays a task.
* A task waits on its predecessors' end events. A delay after a predecessor (socdag data transfer) is a sleep
  kernel on a *link* stream between the two events; release times (job arrivals) are events a *clock* stream
  records after sleeping until them. Link streams are few: transfers that overlap in the simulated schedule get
  different ones.
* Start and end of a task are events on its stream: start fires when the stream reaches the task (its
  predecessors done), end when its kernels are done; both are read relative to the gate.
* More streams than the GPU's hardware work queues make a stream that waits block the others that share its
  queue; importing this module raises ``CUDA_DEVICE_MAX_CONNECTIONS`` to 32 (if CUDA is not initialised yet and
  the variable is unset), and link streams are capped at :data:`MAX_LINK_STREAMS`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch

from schedgym.atomic import atomic_write_text
from schedgym.replay.kernels import KERNEL_KINDS
from schedgym.replay.partitions import Partition, partitions_for
from schedgym.replay.plan import ReplayPlan

os.environ.setdefault("CUDA_DEVICE_MAX_CONNECTIONS", "32")

MAX_LINK_STREAMS = 12
#: Most items of a kind one launch runs (sets the size of the preallocated buffers).
CHUNK_ITEMS = {"gemm": 64, "fft": 16, "elementwise": 16, "reduction": 16}
GEMM_SIZE = 256  # one gemm item: a 256 x 256 by 256 x 256 product
FFT_SIGNALS, FFT_POINTS = 1024, 256  # one fft item: 1,024 signals of 256 points
ROW_VALUES = 1 << 18  # elementwise and reduction inputs: rows of 262,144 float32 (1 MiB), one row repeated
ELEMENTWISE_ROWS = 4  # one elementwise item: a * b + c over 4 rows (1,048,576 values)
REDUCTION_ROWS = 16  # one reduction item: a sum over 16 rows (4,194,304 values)


@dataclass(frozen=True)
class PartitionSpec:
    """What a resource type runs on: ``sms`` SMs (0: the SMs left after the split) with ``core`` or ``accel``
    kernels; with ``shared`` all resources of the type share one partition (a stream each)."""

    sms: int
    implementation: str
    shared: bool = False


#: Jobshop machines: 8 SMs each, CUDA-core kernels (an H100 splits into 15 co-scheduled groups of 8 SMs).
JOBSHOP_LAYOUT = {"machine": PartitionSpec(8, "core")}
#: The default SoC (``schedgym.envs.socdag.catalog``) on an H100's 15 groups of 8 SMs and 12 left over: a big core
#: has twice a little core's SMs; accelerators run the fast path of their kernel kind; the Viterbi decoder takes the
#: 12 leftover SMs, and the two matrix-multiply accelerators share one group (13 PEs do not fit 15 groups otherwise).
SOCDAG_LAYOUT = {
    "big": PartitionSpec(16, "core"), "little": PartitionSpec(8, "core"), "fft": PartitionSpec(8, "accel"),
    "mm": PartitionSpec(8, "accel", shared=True), "viterbi": PartitionSpec(0, "accel"),
}
DEFAULT_SPEC = PartitionSpec(8, "core")


def layout_slots(resource_types: list[str], layout: dict[str, PartitionSpec]) -> tuple[tuple[int, int], ...]:
    """``(sms, share id)`` per resource for :func:`partitions_for` (share id: the type's index if shared, else -1)."""
    types = list(dict.fromkeys(resource_types))
    specs = [layout.get(t, DEFAULT_SPEC) for t in resource_types]
    return tuple((spec.sms, types.index(t) if spec.shared else -1) for t, spec in zip(resource_types, specs))


def fit_key(kind: str, implementation: str, sms: int) -> str:
    return f"{kind}/{implementation}/{sms}"


def fit_sms(spec: PartitionSpec, partition: Partition) -> int:
    """The SM count a fit is keyed by: the partition's, or 0 for the leftover SMs (whose count depends on the GPU)."""
    return partition.sms if spec.sms else 0


@dataclass
class CudaKernelProfile:
    """Fitted kernel times on partitions of one GPU: a launch of ``n`` items takes ``fixed_us + n * item_us``.

    Attributes:
        fits: ``"kind/implementation/sms"`` -> ``[fixed_us, item_us]``.
        gpu: device name; machine: where; method: how it was measured.
    """

    fits: dict[str, list[float]]
    gpu: str
    machine: str
    method: str
    device: str = "cuda"

    def time_us(self, kind: str, implementation: str, sms: int, items: int) -> float:
        """Predicted time of ``items`` items, in as many launches as the chunk size needs."""
        fixed, per_item = self._fit(kind, implementation, sms)
        return math.ceil(items / CHUNK_ITEMS[kind]) * fixed + items * per_item

    def items_for(self, kind: str, implementation: str, sms: int, duration_us: float) -> int:
        """Items whose predicted time is closest to ``duration_us`` (at least one for a positive duration)."""
        if duration_us <= 0:
            return 0
        low, high = 1, max(2, int(duration_us / self._fit(kind, implementation, sms)[1]) + 2)
        while high - low > 1:  # time_us grows with items: the last item count not over the duration
            middle = (low + high) // 2
            low, high = (middle, high) if self.time_us(kind, implementation, sms, middle) <= duration_us else (low, middle)
        return min((low, high), key=lambda n: abs(self.time_us(kind, implementation, sms, n) - duration_us))

    def _fit(self, kind: str, implementation: str, sms: int) -> tuple[float, float]:
        key = fit_key(kind, implementation, sms)
        if key not in self.fits:
            raise KeyError(f"the kernel profile has no fit for {key}; calibrate with `schedgym calibrate --device cuda` on the layout you replay")
        fixed, per_item = self.fits[key]
        return float(fixed), float(per_item)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CudaKernelProfile":
        """Raises:
            ValueError: the file is not a CUDA kernel profile (names the fix)."""
        try:
            data = json.loads(open(path).read())
            if "profile" in data:  # a socdag latency profile embeds the kernel profile it was made with
                data = data["profile"]
            return cls(**data)
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path} is not a CUDA kernel profile ({exc}); write one with `schedgym calibrate --device cuda --out {path}`") from None


class CudaKernels:
    """Inputs shared by every stream and one output set per stream; :meth:`launch` enqueues one task's kernels on
    the current stream. All buffers are made once, before any replay."""

    def __init__(self, device: torch.device, seed: int = 0) -> None:
        gen = torch.Generator(device=device).manual_seed(seed)

        def rand(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.rand(*shape, generator=gen, device=device).to(dtype)

        g, c = GEMM_SIZE, CHUNK_ITEMS
        self.device = device
        self.gemm_in = (rand(c["gemm"], g, g), rand(c["gemm"], g, g))
        rows = c["fft"] * FFT_SIGNALS
        self.fft_real = rand(rows, FFT_POINTS)
        angle = 2 * math.pi * torch.outer(torch.arange(FFT_POINTS, device=device), torch.arange(FFT_POINTS, device=device)).float() / FFT_POINTS
        self.dft_matrix = torch.cat([torch.cos(angle), -torch.sin(angle)], dim=1)  # [points, 2 * points]: real | imaginary
        self.fft_complex = torch.complex(rand(rows, FFT_POINTS), rand(rows, FFT_POINTS))
        self.elementwise_in = tuple(rand(ROW_VALUES).expand(c["elementwise"] * ELEMENTWISE_ROWS, ROW_VALUES) for _ in range(3))
        self.reduction_in = rand(ROW_VALUES).expand(c["reduction"] * REDUCTION_ROWS, ROW_VALUES)
        self._outputs: dict[int, dict[str, torch.Tensor]] = {}

    def outputs_for(self, stream_id: int) -> dict[str, torch.Tensor]:
        """The output buffers of one stream (made on first use: call it before timing anything)."""
        if stream_id not in self._outputs:
            g, c, d = GEMM_SIZE, CHUNK_ITEMS, self.device
            self._outputs[stream_id] = {
                "gemm": torch.empty(c["gemm"], g, g, device=d),
                "fft/core": torch.empty(c["fft"] * FFT_SIGNALS, 2 * FFT_POINTS, device=d),
                "fft/accel": torch.empty(c["fft"] * FFT_SIGNALS, FFT_POINTS, device=d, dtype=torch.complex64),
                "elementwise": torch.empty(c["elementwise"] * ELEMENTWISE_ROWS, ROW_VALUES, device=d), "reduction": torch.empty((), device=d),
            }
        return self._outputs[stream_id]

    def launch(self, kind: str, implementation: str, items: int, out: dict[str, torch.Tensor]) -> None:
        """Enqueue ``items`` items of ``kind`` on the current stream, ``CHUNK_ITEMS[kind]`` per launch at most."""
        chunk = CHUNK_ITEMS[kind]
        while items > 0:
            n, items = min(items, chunk), items - min(items, chunk)
            if kind == "gemm":  # accel: TF32 tensor cores; core: float32 on CUDA cores
                a, b = self.gemm_in
                tf32 = torch.backends.cuda.matmul.allow_tf32
                torch.backends.cuda.matmul.allow_tf32 = implementation == "accel"
                torch.bmm(a[:n], b[:n], out=out["gemm"][:n])
                torch.backends.cuda.matmul.allow_tf32 = tf32
            elif kind == "fft" and implementation == "core":  # a dense DFT as a float32 matrix product
                torch.matmul(self.fft_real[: n * FFT_SIGNALS], self.dft_matrix, out=out["fft/core"][: n * FFT_SIGNALS])
            elif kind == "fft":
                torch.fft.fft(self.fft_complex[: n * FFT_SIGNALS], out=out["fft/accel"][: n * FFT_SIGNALS])
            elif kind == "elementwise":
                a, b, c = (x[: n * ELEMENTWISE_ROWS] for x in self.elementwise_in)
                torch.addcmul(c, a, b, out=out["elementwise"][: n * ELEMENTWISE_ROWS])
            else:
                torch.sum(self.reduction_in[: n * REDUCTION_ROWS], dim=(0, 1), out=out["reduction"])


def sleep_cycles_per_us(stream: torch.cuda.Stream | None = None) -> float:
    """GPU clock cycles per microsecond of ``torch.cuda._sleep`` (measured: a 20 ms sleep timed by events)."""
    stream = stream or torch.cuda.current_stream()
    cycles = 20_000 * 1500
    with torch.cuda.stream(stream):
        torch.cuda._sleep(1000)  # warm-up
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        torch.cuda._sleep(cycles)
        end.record()
    end.synchronize()
    return cycles / (start.elapsed_time(end) * 1000.0)


def calibrate_cuda(specs: list[PartitionSpec], *, repeats: int = 7, group_sms: int = 8, seed: int = 0) -> CudaKernelProfile:
    """Fit launch and item times of every kernel kind on a partition of each distinct spec.

    For ``n`` in 1, 2, 4, 8 and the chunk size, launches of ``n`` items are timed back to back on the partition's
    stream (:func:`time_launch_us`); a least-squares line through the points gives ``fixed_us`` and ``item_us``."""
    device = torch.device("cuda")
    distinct = list({(spec.sms, spec.implementation): spec for spec in specs}.values())  # a shared spec fits as its twin
    partitions = partitions_for(tuple((spec.sms, -1) for spec in distinct), group_sms)
    kernels = CudaKernels(device, seed)
    fits: dict[str, list[float]] = {}
    for spec, partition in zip(distinct, partitions):
        out = kernels.outputs_for(id(partition.stream))
        for kind in KERNEL_KINDS:
            sizes = sorted({1, 2, 4, 8, CHUNK_ITEMS[kind]})
            times = [time_launch_us(kernels, partition, kind, spec.implementation, n, out, repeats) for n in sizes]
            item_us, fixed_us = np.polyfit(sizes, times, 1)
            fits[fit_key(kind, spec.implementation, fit_sms(spec, partition))] = [float(max(fixed_us, 0.0)), float(item_us)]
    name = torch.cuda.get_device_name()
    return CudaKernelProfile(
        fits, name, f"{name}, {torch.cuda.get_device_properties(0).multi_processor_count} SMs, torch {torch.__version__}",
        f"per kind, implementation and partition: launches of n items (n = 1, 2, 4, 8, chunk) queued back to back on the "
        f"partition's green-context stream, CUDA events around {repeats} launches, median of 3 after a warm-up, least-squares line; "
        f"partitions disjoint (groups of {group_sms} SMs)",
    )


def time_launch_us(kernels: CudaKernels, partition: Partition, kind: str, implementation: str, items: int, out: dict, repeats: int) -> float:
    """Wall time (us) of ``items`` items on ``partition`` when launches queue back to back, as in a replay: the
    median over 3 batches of ``repeats`` launches timed by CUDA events, per launch, after a warm-up."""
    samples = []
    with torch.cuda.stream(partition.stream):
        kernels.launch(kind, implementation, items, out)  # warm-up
        for _ in range(3):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(repeats):
                kernels.launch(kind, implementation, items, out)
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) * 1000.0 / repeats)
    return float(np.median(samples))


def _link_assignment(plan: ReplayPlan) -> dict[tuple[int, int], int]:
    """Link stream of each delayed dependency ``(pred, task)``: overlapping transfers (in simulated time) get
    different streams, so none waits behind another, up to :data:`MAX_LINK_STREAMS`; past that a transfer takes
    the stream that frees first."""
    transfers = sorted(
        (float(plan.simulated_end_us[p]), float(plan.simulated_end_us[p] + delay), p, t)
        for t in range(plan.n_tasks) for p, delay in plan.predecessors[t] if delay > 0
    )
    free_at: list[float] = []
    link: dict[tuple[int, int], int] = {}
    for begin, end, p, t in transfers:
        stream = next((i for i, f in enumerate(free_at) if f <= begin), len(free_at))
        if stream == MAX_LINK_STREAMS:
            stream = int(np.argmin(free_at))
        if stream == len(free_at):
            free_at.append(end)
        free_at[stream] = max(free_at[stream], begin) + (end - begin)
        link[p, t] = stream
    return link


def replay_on_cuda(plan: ReplayPlan, profile: CudaKernelProfile, layout: dict[str, PartitionSpec], *, group_sms: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Run ``plan`` on the GPU; returns measured ``(start_us, end_us)`` float arrays ``[n_tasks]`` from the gate.

    Args:
        layout: resource type -> partition spec (types missing from it get :data:`DEFAULT_SPEC`).

    Raises:
        ValueError: the resources need more SMs than the GPU has (names the counts).
        RuntimeError: the host could not enqueue the plan before the gate opened even with a 4 s gate.
    """
    device = torch.device("cuda")
    specs = [layout.get(t, DEFAULT_SPEC) for t in plan.resource_type]
    partitions = partitions_for(layout_slots(plan.resource_type, layout), group_sms)
    kernels = CudaKernels(device, seed)
    outputs = [kernels.outputs_for(r) for r in range(len(partitions))]
    items = [
        profile.items_for(plan.kind[t], specs[r].implementation, fit_sms(specs[r], partitions[r]), plan.duration_us[t])
        for t, r in enumerate(plan.resource.tolist())
    ]
    side = torch.cuda.Stream()
    cycles_per_us = sleep_cycles_per_us(side)
    link_of = _link_assignment(plan)
    links = [torch.cuda.Stream() for _ in range(max(link_of.values(), default=-1) + 1)]
    clock = torch.cuda.Stream()
    # Enqueue in simulated start order: every event waited on is recorded before the wait is enqueued.
    order = np.lexsort((plan.simulated_end_us, plan.simulated_start_us))
    gate_us = 20_000.0 + 40.0 * (plan.n_tasks + sum(items))
    for _ in range(3):
        torch.cuda.synchronize()
        gate = torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(side):
            torch.cuda._sleep(int(gate_us * cycles_per_us))
            gate.record()
        start = [torch.cuda.Event(enable_timing=True) for _ in range(plan.n_tasks)]
        end = [torch.cuda.Event(enable_timing=True) for _ in range(plan.n_tasks)]
        release = _enqueue_releases(plan, clock, gate, cycles_per_us)
        for p in partitions:
            p.stream.wait_event(gate)
        for s in links:
            s.wait_event(gate)
        for t in order:
            t = int(t)
            stream = partitions[plan.resource[t]].stream
            for p, delay in plan.predecessors[t]:
                if delay > 0:
                    link = links[link_of[p, t]]
                    link.wait_event(end[p])
                    arrived = torch.cuda.Event()
                    with torch.cuda.stream(link):
                        torch.cuda._sleep(int(delay * cycles_per_us))
                        arrived.record()
                    stream.wait_event(arrived)
                else:
                    stream.wait_event(end[p])
            if plan.release_us[t] > 0:
                stream.wait_event(release[float(plan.release_us[t])])
            with torch.cuda.stream(stream):
                start[t].record()
                kernels.launch(plan.kind[t], specs[plan.resource[t]].implementation, items[t], outputs[plan.resource[t]])
                end[t].record()
        enqueued_in_time = not gate.query()
        torch.cuda.synchronize()
        if enqueued_in_time:
            start_us = np.array([gate.elapsed_time(e) * 1000.0 for e in start])
            end_us = np.array([gate.elapsed_time(e) * 1000.0 for e in end])
            return start_us, end_us
        gate_us *= 4
    raise RuntimeError(f"the host could not enqueue {plan.n_tasks} tasks before a {gate_us / 4e6:.1f} s gate opened; replay a smaller plan")


def _enqueue_releases(plan: ReplayPlan, clock: torch.cuda.Stream, gate: torch.cuda.Event, cycles_per_us: float) -> dict[float, torch.cuda.Event]:
    """One event per distinct positive release time, recorded by the clock stream after sleeping from the gate."""
    events: dict[float, torch.cuda.Event] = {}
    clock.wait_event(gate)
    previous = 0.0
    with torch.cuda.stream(clock):
        for release in sorted({float(r) for r in plan.release_us if r > 0}):
            torch.cuda._sleep(int((release - previous) * cycles_per_us))
            events[release] = torch.cuda.Event()
            events[release].record()
            previous = release
    return events
