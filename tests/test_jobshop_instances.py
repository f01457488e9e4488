import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedgym.envs import InstanceFormatError
from schedgym.envs.jobshop import (
    DMU_CLASSES,
    SUITES,
    TAILLARD_CLASSES,
    JobShopInstance,
    TaillardGenerator,
    benchmark_names,
    generate_taillard,
    load_benchmark,
    load_instance,
    parse_orlib,
    parse_taillard,
    parse_sizes,
    read_instance_file,
    resolve_suite,
    to_orlib_text,
    to_taillard_text,
)


def test_every_family_is_shipped_with_bounds():
    names = set(benchmark_names())
    expected = (
        [f"ta{i:02d}" for i in range(1, 81)]
        + [f"dmu{i:02d}" for i in range(1, 81)]
        + [f"la{i:02d}" for i in range(1, 41)]
        + [f"abz{i}" for i in range(5, 10)]
        + ["ft06", "ft10", "ft20"]
        + [f"orb{i:02d}" for i in range(1, 11)]
        + [f"swv{i:02d}" for i in range(1, 21)]
        + [f"yn{i}" for i in range(1, 5)]
    )
    assert set(expected) <= names
    for name in expected:
        inst = load_benchmark(name)
        assert inst.upper_bound is not None and inst.lower_bound is not None
        assert inst.lower_bound <= inst.upper_bound
        assert inst.trivial_lower_bound() <= inst.upper_bound
        assert inst.reference


def test_known_optima():
    assert load_benchmark("ft06").optimum == 55
    assert load_benchmark("ft10").optimum == 930
    assert load_benchmark("ta01").optimum == 1231


@pytest.mark.parametrize("family,classes,first", [("taillard", TAILLARD_CLASSES, 1), ("dmu", DMU_CLASSES, 1)])
def test_size_class_suites_hold_their_size(family, classes, first):
    assert len(classes) == 8
    seen = set()
    for size in classes:
        names = SUITES[f"{family}-{size}"]
        assert len(names) == 10
        for inst in resolve_suite(f"{family}-{size}"):
            assert inst.size == size
        seen |= set(names)
    assert seen == set(SUITES[family]) and len(seen) == 80


def test_classic_suite_families():
    prefixes = {"".join(c for c in n if c.isalpha()) for n in SUITES["classic"]}
    assert prefixes == {"abz", "ft", "la", "orb", "swv", "yn"}


def _instances():
    return st.builds(
        lambda j, m, seed: generate_taillard(j, m, seed, name="h"),
        st.integers(1, 8),
        st.integers(1, 8),
        st.integers(0, 2**31),
    )


@settings(max_examples=60, deadline=None)
@given(_instances())
def test_orlib_round_trip(inst):
    back = parse_orlib(to_orlib_text(inst))
    assert np.array_equal(back.machines, inst.machines) and np.array_equal(back.durations, inst.durations)


@settings(max_examples=60, deadline=None)
@given(_instances())
def test_taillard_round_trip(inst):
    back = parse_taillard(to_taillard_text(inst))
    assert np.array_equal(back.machines, inst.machines) and np.array_equal(back.durations, inst.durations)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="0123456789 -x\n#Times", max_size=80))
def test_parsers_never_fail_unclearly(text):
    for parse in (parse_orlib, parse_taillard):
        try:
            inst = parse(text)
        except InstanceFormatError as exc:
            assert "Fix:" in str(exc)
        else:
            assert isinstance(inst, JobShopInstance)


GOOD = "# tiny\n2 2\n0 3 1 2\n1 4 0 1\n"


@pytest.mark.parametrize(
    "text,line,words",
    [
        ("two 2\n0 3 1 2\n1 4 0 1\n", 1, "not an integer"),
        ("2\n0 3 1 2\n1 4 0 1\n", 1, "bad header"),
        ("2 2\n0 3 1 2\n", 2, "job lines"),
        ("2 2\n0 3 1\n1 4 0 1\n", 2, "expected 4"),
        ("2 2\n0 -3 1 2\n1 4 0 1\n", 2, "negative"),
        ("2 2\n0 3 5 2\n1 4 0 1\n", 2, "out of range"),
        ("2 2\n0 3 1 2\n1 4 0 x\n", 3, "not an integer"),
    ],
)
def test_malformed_orlib_names_file_line_and_fix(tmp_path, text, line, words):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InstanceFormatError) as info:
        read_instance_file(path)
    message = str(info.value)
    assert str(path) in message and f"line {line}" in message and words in message and "Fix:" in message


def test_malformed_taillard(tmp_path):
    path = tmp_path / "bad_ta.txt"
    path.write_text("2 2\nTimes\n3 2\n4\nMachines\n1 2\n2 1\n")
    with pytest.raises(InstanceFormatError, match="line 4.*expected 2"):
        read_instance_file(path)
    path.write_text("2 2\nTimes\n3 2\n4 1\nMachines\n1 3\n2 1\n")
    with pytest.raises(InstanceFormatError, match="line 6.*out of range"):
        read_instance_file(path)


def test_files_in_both_formats_load_wherever_names_do(tmp_path):
    inst = load_benchmark("ft06")
    orlib, taillard = tmp_path / "a.txt", tmp_path / "b.txt"
    orlib.write_text(to_orlib_text(inst))
    taillard.write_text("6 6 1 2 55 55\n" + to_taillard_text(inst).split("\n", 1)[1])
    for path in (orlib, taillard):
        loaded = load_instance(str(path))
        assert np.array_equal(loaded.durations, inst.durations)
        assert resolve_suite(str(path))[0].n_jobs == 6
    assert load_instance(str(taillard)).optimum == 55
    with pytest.raises(KeyError, match="neither"):
        load_instance(str(tmp_path / "missing.txt"))


def test_generator_is_seeded_and_taillard_like():
    a, b = generate_taillard(15, 10, 7), generate_taillard(15, 10, 7)
    assert np.array_equal(a.durations, b.durations) and np.array_equal(a.machines, b.machines)
    assert not np.array_equal(a.durations, generate_taillard(15, 10, 8).durations)
    assert a.durations.min() >= 1 and a.durations.max() <= 99
    for row in a.machines:
        assert sorted(row) == list(range(10))
    gen = TaillardGenerator(parse_sizes("6x6,10x5"))
    rng = np.random.default_rng(0)
    assert {gen(rng).size for _ in range(30)} == {"6x6", "10x5"}
    with pytest.raises(ValueError, match="<jobs>x<machines>"):
        parse_sizes("10by10")
