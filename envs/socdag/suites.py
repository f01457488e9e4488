"""Named socdag suites and instance names.

* ``socdag-static``: each built-in application alone, the HEFT paper's example (``topcuoglu2002``) and three random
  layered DAGs (``random-<tasks>-<layers>-s<seed>``); no noise; objective: makespan.
* ``socdag-stream-low``: 100 jobs of the six applications (equal mix) arriving as a Poisson stream at
  40 jobs/ms, run-time noise of relative std 0 and 0.2, seeds 0-2; objective: mean job duration. Online HEFT keeps
  jobs within ~15% of their isolated duration (about 90 us).
* ``socdag-stream-high``: the same at 80 jobs/ms, near saturation of the default SoC (online HEFT's mean job
  duration is 3-4x the isolated one and still climbing with the rate), with noise 0, 0.2 and 0.3.

Stream instances are named ``stream-rate<R>-noise<S>-s<seed>``; any such name resolves, as does an ``.stg`` path.
A suite or instance name followed by ``@FILE`` runs on the measured latency table in FILE
(:mod:`schedgym.envs.socdag.latency_profile`); in a suite, instances of other task types (``topcuoglu2002``) keep
their own table.
"""

from __future__ import annotations

import dataclasses
import os
import re

from schedgym.envs.socdag.catalog import APPLICATIONS, application_instance, topcuoglu2002
from schedgym.envs.socdag.generator import random_dag_instance, stream_instance
from schedgym.envs.socdag.instance import SocDagInstance
from schedgym.envs.socdag.latency_profile import load_latency_table, with_latency_table
from schedgym.envs.socdag.loaders import load_stg

STREAM_JOBS = 100
LOW_RATE_PER_MS, HIGH_RATE_PER_MS = 40.0, 80.0
SEEDS = (0, 1, 2)


def _streams(rate: float, noises: tuple[float, ...]) -> list[str]:
    return [f"stream-rate{rate:g}-noise{noise:g}-s{seed}" for noise in noises for seed in SEEDS]


SUITES: dict[str, list[str]] = {
    "socdag-static": [*APPLICATIONS, "topcuoglu2002", "random-20-5-s0", "random-30-6-s1", "random-40-8-s2"],
    "socdag-stream-low": _streams(LOW_RATE_PER_MS, (0.0, 0.2)),
    "socdag-stream-high": _streams(HIGH_RATE_PER_MS, (0.0, 0.2, 0.3)),
}

#: Optimal makespans (us) of the static suite, each proved by ``schedgym solve --problem socdag --solver cpsat``
#: (OR-Tools 9.15, 2 workers, under 1 s per DAG); topcuoglu2002's 73 is also the known optimum of that example.
STATIC_OPTIMA_US = {
    "wifi_tx": 78.192, "wifi_rx": 106.456, "range_detection": 86.768, "pulse_doppler": 144.44, "sc_tx": 55.048,
    "sc_rx": 84.288, "topcuoglu2002": 73.0, "random-20-5-s0": 71.648, "random-30-6-s1": 94.72, "random-40-8-s2": 174.44,
}

_RANDOM = re.compile(r"random-(\d+)-(\d+)-s(\d+)$")
_STREAM = re.compile(r"stream-rate([0-9.]+)-noise([0-9.]+)-s(\d+)$")


def load_instance(name: str) -> SocDagInstance:
    """A built-in instance by name (application, ``topcuoglu2002``, ``random-...``, ``stream-...``) or an STG file."""
    instance = _build(name)
    if name in STATIC_OPTIMA_US:
        instance = dataclasses.replace(instance, optimum_us=STATIC_OPTIMA_US[name])
    return instance


def _build(name: str) -> SocDagInstance:
    if name in APPLICATIONS:
        return application_instance(name)
    if name == "topcuoglu2002":
        return topcuoglu2002()
    if match := _RANDOM.match(name):
        return random_dag_instance(int(match[1]), int(match[2]), int(match[3]))
    if match := _STREAM.match(name):
        return stream_instance(float(match[1]), STREAM_JOBS, float(match[2]), int(match[3]), name=name)
    if os.path.exists(name):
        return load_stg(name)
    raise KeyError(
        f"unknown socdag instance {name!r}; use an application ({', '.join(APPLICATIONS)}), topcuoglu2002, "
        "random-<tasks>-<layers>-s<seed>, stream-rate<jobs/ms>-noise<std>-s<seed> or the path of an .stg file"
    )


def resolve_suite(spec: str) -> list[SocDagInstance]:
    """Instances of a suite name, or the one instance a name or STG path gives; ``SPEC@FILE``: on FILE's table."""
    if "@" in spec:  # a suite keeps the instances of other task types (topcuoglu2002) on their own tables
        spec, table_path = spec.rsplit("@", 1)
        table = load_latency_table(table_path)
        return [with_latency_table(i, table) if spec not in SUITES or table.fits(i) else i for i in resolve_suite(spec)]
    if spec in SUITES:
        return [load_instance(name) for name in SUITES[spec]]
    try:
        return [load_instance(spec)]
    except KeyError:
        raise KeyError(f"unknown socdag suite {spec!r}; choose one of {', '.join(SUITES)}, an instance name or an .stg path") from None
