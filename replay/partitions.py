"""Disjoint SM partitions of one GPU, each with its own CUDA stream: the processing elements of a replay.

The driver API (``cuda.bindings.driver``) splits the device's SMs into groups of ``group_sms`` SMs
(``cuDevSmResourceSplitByCount``); a partition of ``k`` groups is one green context made from those groups
(``cuDevResourceGenerateDesc``, ``cuGreenCtxCreate``), and its stream (``cuGreenCtxStreamCreate``) reaches PyTorch as a
``torch.cuda.ExternalStream``. Kernels launched on that stream run on the partition's SMs only, and no two
partitions share an SM. The SMs left over after the split (fewer than a group) form one more partition, available
as ``sms=0`` ("the rest").

``torch.cuda.green_contexts.GreenContext.create(num_sms=N)`` is not used: two contexts made that way may share SMs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch


@dataclass(frozen=True)
class Partition:
    """One partition: its SM count, the stream that runs on it and its green context (a driver handle)."""

    sms: int
    stream: torch.cuda.ExternalStream
    context: object


def _check(result: tuple, call: str):
    """Unpack a ``cuda.bindings.driver`` result tuple, raising with the call's name on an error code."""
    from cuda.bindings import driver

    status, *values = result if isinstance(result, tuple) else (result,)
    if status != driver.CUresult.CUDA_SUCCESS:
        raise RuntimeError(f"{call} failed with {status!r}; SM partitions need a GPU and driver with green contexts (CUDA 12.4 or later)")
    return values[0] if len(values) == 1 else values


class SmPartitioner:
    """Hands out disjoint SM partitions of the current CUDA device.

    Args:
        group_sms: SMs per group asked for; the driver may make larger groups (on an H100, groups of 8 SMs: 15 of
            them, plus 12 SMs left over).

    Raises:
        RuntimeError: no CUDA device, no ``cuda.bindings`` (install ``cuda-python``), or a driver without green contexts.
    """

    def __init__(self, group_sms: int = 8) -> None:
        if not torch.cuda.is_available():
            raise RuntimeError("SM partitions need a CUDA device (torch.cuda.is_available() is False); replay with --device cpu")
        try:
            from cuda.bindings import driver
        except ImportError:
            raise RuntimeError("SM partitions need the CUDA driver bindings: pip install cuda-python (cuda.bindings.driver)") from None
        torch.cuda.init()
        _check(driver.cuInit(0), "cuInit")
        self._device = _check(driver.cuDeviceGet(torch.cuda.current_device()), "cuDeviceGet")
        whole = _check(driver.cuDeviceGetDevResource(self._device, driver.CUdevResourceType.CU_DEV_RESOURCE_TYPE_SM), "cuDeviceGetDevResource")
        self.total_sms = int(whole.sm.smCount)
        n_groups = self.total_sms // group_sms
        # flags 0: each group's SMs can be co-scheduled, as thread-block clusters need
        groups, n_made, remaining = _check(driver.cuDevSmResourceSplitByCount(n_groups, whole, 0, group_sms), "cuDevSmResourceSplitByCount")
        self.group_sms = int(groups[0].sm.smCount) if int(n_made) else group_sms
        self._free_groups = list(groups[: int(n_made)])
        self._remaining = remaining if int(remaining.sm.smCount) > 0 else None
        self._keep: list = []  # green contexts live as long as the partitioner

    def take(self, sms: int) -> Partition:
        """A partition of ``sms`` SMs (a multiple of ``group_sms``), or of the leftover SMs when ``sms`` is 0.

        Raises:
            ValueError: ``sms`` is not a multiple of the group size, or too few SMs are left.
        """
        from cuda.bindings import driver

        if sms == 0:
            if self._remaining is None:
                raise ValueError("no leftover SMs: the split was even or the rest was already taken")
            resources, self._remaining = [self._remaining], None
        else:
            if sms % self.group_sms:
                raise ValueError(f"a partition takes whole groups of {self.group_sms} SMs, not {sms}")
            k = sms // self.group_sms
            if k > len(self._free_groups):
                raise ValueError(f"{sms} SMs asked for but only {len(self._free_groups) * self.group_sms} of {self.total_sms} are left; use fewer or smaller partitions")
            resources, self._free_groups = self._free_groups[:k], self._free_groups[k:]
        desc = _check(driver.cuDevResourceGenerateDesc(resources, len(resources)), "cuDevResourceGenerateDesc")
        context = _check(driver.cuGreenCtxCreate(desc, self._device, driver.CUgreenCtxCreate_flags.CU_GREEN_CTX_DEFAULT_STREAM), "cuGreenCtxCreate")
        self._keep.append(context)
        return self.another_stream(Partition(sum(int(r.sm.smCount) for r in resources), None, context))

    def another_stream(self, partition: Partition) -> Partition:
        """The same SMs (the same green context) with a new stream."""
        from cuda.bindings import driver

        handle = _check(driver.cuGreenCtxStreamCreate(partition.context, driver.CUstream_flags.CU_STREAM_NON_BLOCKING, 0), "cuGreenCtxStreamCreate")
        self._keep.append(handle)
        return Partition(partition.sms, torch.cuda.ExternalStream(int(handle)), partition.context)


@lru_cache(maxsize=None)
def partitions_for(slots: tuple[tuple[int, int], ...], group_sms: int = 8) -> tuple[Partition, ...]:
    """One partition per slot ``(sms, share)``, made once per process and layout (green contexts are not freed, so
    replays of the same layout reuse them). Slots with the same ``share`` id (-1: none) share one partition's SMs,
    each with a stream of its own; the others are disjoint.

    Raises:
        ValueError: the counts need more SMs than the GPU has (see :meth:`SmPartitioner.take`).
    """
    partitioner = SmPartitioner(group_sms)
    made: dict[int, Partition] = {}
    partitions = []
    for sms, share in slots:
        if share >= 0 and share in made:
            partitions.append(partitioner.another_stream(made[share]))
            continue
        partitions.append(partitioner.take(sms))
        if share >= 0:
            made[share] = partitions[-1]
    return tuple(partitions)
