"""How long a dependency between two streams costs on the GPU: a chain of 400 tiny kernels alternating between two
streams, each waiting on the other's event, enqueued behind a gate and timed with CUDA events. Compared side by
side: one stream (no waits), two ordinary streams, two streams of disjoint green-context SM partitions.

    python benchmarks/gpu_dependency_latency.py
"""

from __future__ import annotations

import torch

from schedgym.replay.partitions import partitions_for

HOPS = 400


def chain_us(first: torch.cuda.Stream, second: torch.cuda.Stream) -> float:
    """Microseconds per hop of the alternating chain."""
    x = torch.ones(16, device="cuda")
    gate_stream = torch.cuda.Stream()
    torch.cuda.synchronize()
    gate, start, end = torch.cuda.Event(), torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.cuda.stream(gate_stream):
        torch.cuda._sleep(50_000_000)
        gate.record()
    first.wait_event(gate)
    with torch.cuda.stream(first):
        start.record()
    previous = start
    for hop in range(HOPS):
        stream = first if hop % 2 == 0 else second
        stream.wait_event(previous)
        with torch.cuda.stream(stream):
            x.add_(1.0)
            previous = torch.cuda.Event()
            previous.record()
    first.wait_event(previous)
    with torch.cuda.stream(first):
        end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1000.0 / HOPS


def main() -> None:
    single = torch.cuda.Stream()
    plain = (torch.cuda.Stream(), torch.cuda.Stream())
    green = tuple(p.stream for p in partitions_for(((8, -1), (8, -1))))
    for label, pair in (("one stream", (single, single)), ("two streams", plain), ("two green-context partitions", green)):
        chain_us(*pair)  # warm-up
        print(f"{label:30} {min(chain_us(*pair) for _ in range(5)):7.2f} us per hop", flush=True)


if __name__ == "__main__":
    main()
