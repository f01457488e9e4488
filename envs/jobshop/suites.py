"""Named suites of job-shop benchmark instances."""

from __future__ import annotations

import os

from schedgym.envs.jobshop.blocking import BlockingJobShopInstance, suite_instance
from schedgym.envs.jobshop.instance import JobShopInstance
from schedgym.envs.jobshop.loaders import benchmark_names, load_benchmark, load_instance

#: Taillard's eight size classes, ten instances each (ta01-ta10 is 15x15, ..., ta71-ta80 is 100x20).
TAILLARD_CLASSES = ("15x15", "20x15", "20x20", "30x15", "30x20", "50x15", "50x20", "100x20")
#: DMU's eight size classes; each class holds dmuXX in two blocks of five (dmu01-05 and dmu41-45 are 20x15, ...).
DMU_CLASSES = ("20x15", "20x20", "30x15", "30x20", "40x15", "40x20", "50x15", "50x20")


def _numbered(prefix: str, numbers: range) -> list[str]:
    return [f"{prefix}{i:02d}" for i in numbers]


def _build_suites() -> dict[str, list[str]]:
    suites: dict[str, list[str]] = {}
    for k, size in enumerate(TAILLARD_CLASSES):
        suites[f"taillard-{size}"] = _numbered("ta", range(10 * k + 1, 10 * k + 11))
    suites["taillard"] = _numbered("ta", range(1, 81))
    for k, size in enumerate(DMU_CLASSES):
        suites[f"dmu-{size}"] = _numbered("dmu", range(5 * k + 1, 5 * k + 6)) + _numbered("dmu", range(5 * k + 41, 5 * k + 46))
    suites["dmu"] = _numbered("dmu", range(1, 81))
    names = benchmark_names()
    suites["classic"] = [n for n in names if n.startswith(("abz", "ft", "la", "orb", "swv", "yn"))]
    return suites


SUITES: dict[str, list[str]] = _build_suites()


def suite_names() -> list[str]:
    return list(SUITES)


def resolve_suite(spec: str) -> list[JobShopInstance]:
    """Instances of a suite: a suite name, one shipped instance name, or a path to an instance file."""
    if spec in SUITES:
        return [load_benchmark(name) for name in SUITES[spec]]
    if spec in benchmark_names() or os.path.exists(spec):
        return [load_instance(spec)]
    raise KeyError(f"unknown job-shop suite {spec!r}; choose one of {', '.join(SUITES)}, an instance name or a file path")


# ---------------------------------------------------------------------------------------------------- blocking shop
#: The shutdown rates of the blocking suites (shutdowns per machine per mean operation duration).
SHUTDOWN_RATES = (0.0, 0.05, 0.1)
#: The Taillard classes that have blocking suites.
BLOCKING_CLASSES = ("15x15", "20x15", "20x20")


def _blocking_suite_name(size: str, rate: float) -> str:
    return f"blocking-taillard-{size}" + (f"-shutdown{rate:g}" if rate > 0 else "")


BLOCKING_SUITES: dict[str, str] = {
    _blocking_suite_name(size, rate): f"{SUITES[f'taillard-{size}'][0]}..{SUITES[f'taillard-{size}'][-1]} as blocking shops with swaps"
    + (f", shutdowns at rate {rate:g}" if rate > 0 else ", no shutdowns")
    for size in BLOCKING_CLASSES
    for rate in SHUTDOWN_RATES
}


def resolve_blocking_suite(spec: str) -> list[BlockingJobShopInstance]:
    """Instances of a blocking suite: ``blocking-<job-shop suite, instance or file>[-shutdown<rate>]`` (e.g.
    ``blocking-taillard-15x15-shutdown0.05``, ``blocking-dmu-20x15``, ``blocking-ta01-shutdown0.1``), each with the
    shutdowns :func:`~schedgym.envs.jobshop.blocking.suite_instance` draws for its name and the rate."""
    if not spec.startswith("blocking-"):
        raise KeyError(f"unknown blocking suite {spec!r}; a blocking suite is blocking-<job-shop suite>[-shutdown<rate>], e.g. {', '.join(BLOCKING_SUITES)}")
    base, _, rate_text = spec.removeprefix("blocking-").partition("-shutdown")
    try:
        rate = float(rate_text) if rate_text else 0.0
    except ValueError:
        raise KeyError(f"blocking suite {spec!r}: the shutdown rate {rate_text!r} is not a number, e.g. blocking-taillard-15x15-shutdown0.05") from None
    return [suite_instance(instance, rate) for instance in resolve_suite(base)]
