import numpy as np
import pytest

from schedgym.baselines.jobshop import DispatchingRule, TabuSearchSolver, tabu_search
from schedgym.envs.jobshop.disjunctive import DisjunctiveSchedule
from schedgym.envs.resource_order import tasks_by_resource
from schedgym.envs.jobshop import JobShopSolution, generate_taillard, load_benchmark, validate
from schedgym.registry import make_solver


def heads_and_tails(instance, sequences) -> tuple[np.ndarray, np.ndarray]:
    """Earliest starts and tails (longest path from an operation's end to the schedule's end) of machine sequences,
    by repeated relaxation of every arc (Bellman-Ford style), independent of the graph code."""
    ops = instance.n_operations
    duration = instance.durations.ravel()
    arcs = [(op - 1, op) for op in range(ops) if op % instance.n_ops]
    arcs += [(a, b) for seq in sequences for a, b in zip(seq, seq[1:])]
    head, tail = np.zeros(ops, dtype=np.int64), np.zeros(ops, dtype=np.int64)
    for _ in range(ops + 1):
        changed = False
        for a, b in arcs:
            if head[a] + duration[a] > head[b]:
                head[b], changed = head[a] + duration[a], True
            if tail[b] + duration[b] > tail[a]:
                tail[a], changed = tail[b] + duration[b], True
        if not changed:
            return head, tail
    raise AssertionError("the sequences contain a cycle")


def machine_sequences(instance, start_times) -> list[list[int]]:
    return tasks_by_resource(instance.machines.ravel(), np.asarray(start_times).ravel(), instance.n_machines)


def test_swap_estimates_and_incremental_swaps_match_a_relaxation_of_the_graph():
    instance = generate_taillard(8, 5, 3)
    schedule = DisjunctiveSchedule.from_start_times(instance, DispatchingRule("spt").solve(instance).start_times)
    duration = instance.durations.ravel()
    checked = 0
    for step in range(30):
        moves = np.flatnonzero(schedule.moves())
        for u, estimate in zip(moves.tolist(), schedule.estimates(moves).tolist()):
            v = int(schedule.machine_succ[u])
            sequences = schedule.sequences()
            seq = sequences[int(instance.machines.ravel()[u])]
            k = seq.index(u)
            assert seq[k + 1] == v  # a move swaps machine neighbours
            seq[k], seq[k + 1] = v, u
            head, tail = heads_and_tails(instance, sequences)
            # the estimate is exactly the longest path through u or v after the swap
            assert estimate == max(head[w] + duration[w] + tail[w] for w in (u, v))
            checked += 1
        if not len(moves):
            break
        schedule.swap(int(moves[step % len(moves)]))
        head, tail = heads_and_tails(instance, schedule.sequences())
        assert schedule.head.tolist() == head.tolist() and schedule.tail.tolist() == tail.tolist()
        assert schedule.makespan == int((head + duration).max())
    assert checked > 20


def test_tabu_search_reaches_the_ft06_optimum_and_never_worsens_its_start():
    instance = load_benchmark("ft06")
    start = DispatchingRule("lpt").solve(instance)
    result = tabu_search(instance, start.start_times, max_iterations=3000, seed=0)
    solution = JobShopSolution(instance.name, result.start_times)
    assert validate(instance, solution) == []
    assert solution.makespan(instance) == result.makespan == 55 < start.makespan(instance)


def test_tabu_search_improves_ta01_and_is_reproducible():
    instance = load_benchmark("ta01")
    start = DispatchingRule("fdd-mwkr").solve(instance)
    first = tabu_search(instance, start.start_times, max_iterations=1500, seed=4)
    second = tabu_search(instance, start.start_times, max_iterations=1500, seed=4)
    assert np.array_equal(first.start_times, second.start_times) and first.iterations == 1500
    assert validate(instance, JobShopSolution(instance.name, first.start_times)) == []
    assert first.makespan < 0.95 * start.makespan(instance)


def test_tabu_solver_improves_its_start_solver_within_the_limit():
    instance = load_benchmark("la16")
    for solver in (make_solver("jobshop", "tabu"), TabuSearchSolver("tabu-from-lpt", DispatchingRule("lpt"))):
        solution = solver.solve(instance, time_limit=1.0, seed=0)
        assert validate(instance, solution) == []
        assert solution.makespan(instance) < solver.start.solve(instance).makespan(instance)


def test_bad_uses_are_refused_with_the_fix():
    instance = load_benchmark("ft06")
    start = DispatchingRule("spt").solve(instance).start_times
    with pytest.raises(ValueError, match="time limit or an iteration limit"):
        tabu_search(instance, start)
    with pytest.raises(ValueError, match="drop the machine downtime or use cpsat"):
        make_solver("jobshop", "tabu").solve(instance, time_limit=0.1, machine_downtime=[(0, 0, 5)])
    assert "cycle" in cycle_error(instance, start)


def cycle_error(instance, start_times) -> str:
    """Order two machines against two jobs' routes (job 1 visits m2 then m1, job 2 m1 then m2; m1 runs job 1 first
    and m2 job 2 first) and return the error the graph raises."""
    machines = instance.machines
    position = {(j, int(m)): o for j in range(instance.n_jobs) for o, m in enumerate(machines[j])}
    for j1 in range(instance.n_jobs):
        for j2 in range(instance.n_jobs):
            for m1 in range(instance.n_machines):
                for m2 in range(instance.n_machines):
                    if j1 != j2 and m1 != m2 and position[j1, m2] < position[j1, m1] and position[j2, m1] < position[j2, m2]:
                        sequences = machine_sequences(instance, start_times)
                        op = lambda j, m: j * instance.n_ops + position[j, m]  # noqa: E731
                        for m, first, second in ((m1, op(j1, m1), op(j2, m1)), (m2, op(j2, m2), op(j1, m2))):
                            sequences[m] = [first, second] + [x for x in sequences[m] if x not in (first, second)]
                        with pytest.raises(ValueError) as error:
                            DisjunctiveSchedule(instance, sequences)
                        return str(error.value)
    raise AssertionError("no two crossing routes in this instance")


def test_search_stops_when_the_critical_path_proves_the_optimum():
    from schedgym.envs.jobshop import JobShopInstance

    one_machine = JobShopInstance("one-machine", machines=np.zeros((4, 1), dtype=np.int64), durations=np.array([[3], [1], [4], [1]]))
    start = DispatchingRule("spt").solve(one_machine).start_times
    result = tabu_search(one_machine, start, max_iterations=100, seed=0)
    assert result.iterations == 1 and result.makespan == one_machine.trivial_lower_bound() == 9
