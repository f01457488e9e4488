"""Real work of a chosen duration: the kernels a replayed task runs, and their calibration.

Each kernel kind does one fixed *unit* of work; a task of duration ``d`` runs ``round(d / unit_us[kind])`` units.
The unit times come from a :class:`KernelProfile`, measured on the device that replays (:func:`calibrate_cpu`).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from schedgym.atomic import atomic_write_text

KERNEL_KINDS = ("gemm", "fft", "elementwise", "reduction")


class CpuKernels:
    """One unit of each kind on preallocated float32 numpy arrays: ``gemm`` 96x96 @ 96x96, ``fft`` a 4,096-point
    complex FFT, ``elementwise`` a * b + c over 131,072 values, ``reduction`` a sum over 524,288 values. numpy
    releases the GIL inside them, so threads replaying different resources run them in parallel."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        a, b = rng.random((96, 96), dtype=np.float32), rng.random((96, 96), dtype=np.float32)
        signal = rng.random(4096).astype(np.complex64)
        x, y, z = (rng.random(131_072, dtype=np.float32) for _ in range(3))
        big = rng.random(524_288, dtype=np.float32)
        self._unit: dict[str, Callable[[], object]] = {
            "gemm": lambda: a @ b,
            "fft": lambda: np.fft.fft(signal),
            "elementwise": lambda: x * y + z,
            "reduction": lambda: big.sum(),
        }

    def run(self, kind: str, units: int) -> None:
        unit = self._unit[kind]
        for _ in range(units):
            unit()


@dataclass
class KernelProfile:
    """Measured time of one unit of each kernel kind on a device.

    Attributes:
        device: ``cpu`` (or ``cuda`` once measured there).
        unit_us: kernel kind -> microseconds per unit.
        machine: where it was measured.
        method: how it was measured.
    """

    device: str
    unit_us: dict[str, float]
    machine: str
    method: str

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "KernelProfile":
        """Raises:
            ValueError: the file is not a kernel profile (it names what is missing and how to make one)."""
        try:
            data = json.loads(open(path).read())
            profile = cls(**data)
            missing = [k for k in KERNEL_KINDS if not profile.unit_us.get(k, 0) > 0]
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path} is not a kernel profile ({exc}); write one with `schedgym calibrate --device cpu --out {path}`") from None
        if missing:
            raise ValueError(f"{path} has no positive unit time for {missing}; calibrate again with `schedgym calibrate`")
        return profile


def calibrate_cpu(kernels: CpuKernels | None = None, units: int = 40, repeats: int = 5) -> KernelProfile:
    """Time ``units`` units of each kind ``repeats`` times on this CPU (one thread); the median per unit."""
    kernels = kernels or CpuKernels()
    unit_us = {}
    for kind in KERNEL_KINDS:
        kernels.run(kind, 3)  # warm-up
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            kernels.run(kind, units)
            samples.append((time.perf_counter() - started) / units * 1e6)
        unit_us[kind] = float(np.median(samples))
    return KernelProfile(
        "cpu", unit_us, f"{platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}",
        f"median over {repeats} runs of {units} units per kind, one thread, after a warm-up",
    )
