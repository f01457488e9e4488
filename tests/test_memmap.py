import numpy as np
import pytest

from schedgym.baselines.memmap import CpSatMemMap, GreedyPlacer
from schedgym.envs import InstanceFormatError
from schedgym.envs.memmap import SLOW, MemMapInstance, MemMapSolution, Placement, load_minimalloc_csv, metrics, resolve_suite, validate


def _mapping_instance():
    """Three buffers on four ops; fast memory holds 100 bytes, so buffers 0 and 1 (live together) cannot both fit."""
    return MemMapInstance(
        "tiny", size_bytes=np.array([60, 60, 40]), live_start=np.array([0, 1, 2]), live_end=np.array([3, 3, 4]),
        capacity_bytes=100, alignment_bytes=4, op_compute_s=np.array([1e-9, 1e-9, 1e-9, 1e-9]),
        access_op=np.array([0, 2, 1, 2, 3]), access_buffer=np.array([0, 0, 1, 1, 2]), access_bytes=np.array([600.0, 600, 6000, 6000, 400]),
        fast_bw_bytes_per_s=1e12, slow_bw_bytes_per_s=1e10,
    )


def test_validator_names_each_violation():
    inst = _mapping_instance()
    assert validate(inst, MemMapSolution(np.array([0, SLOW, 60]))) == []
    cases = {
        "overlap in fast memory": np.array([0, 20, SLOW]),
        "not a multiple": np.array([2, SLOW, SLOW]),
        "exceeds the capacity": np.array([SLOW, 48, SLOW]),
        "one offset per buffer": np.array([0, 0]),
    }
    for words, offsets in cases.items():
        assert any(words in v for v in validate(inst, MemMapSolution(offsets))), words
    packing = load_minimalloc_csv(_write_csv("x.100.csv", [(0, 2, 60), (1, 3, 50)]))
    assert any("packing instance" in v for v in validate(packing, MemMapSolution(np.array([0, SLOW]))))


def test_roofline_cost_model_by_hand():
    inst = _mapping_instance()
    all_slow = metrics(inst, MemMapSolution(np.full(3, SLOW)))
    # op 0: 600 B slow = 60 ns; op 1: 6000 B = 600 ns; op 2: 6600 B = 660 ns; op 3: 400 B = 40 ns
    assert all_slow["runtime_s"] == pytest.approx(1360e-9)
    best = metrics(inst, MemMapSolution(np.array([SLOW, 0, 60])))
    # buffer 1 fast: op 1 = max(1 ns, 6 ns), op 2 = 600 B slow (60 ns) + 6000 B fast (6 ns); buffer 2 fast: op 3 = max(1, 0.4) ns
    assert best["runtime_s"] == pytest.approx(60e-9 + 6e-9 + 66e-9 + 1e-9)
    assert best["improvement_pct"] == pytest.approx(100 * (1360 - 133) / 1360)
    assert best["fast_bytes_peak"] == 100 and best["placed_fraction"] == pytest.approx(2 / 3)


def test_placement_offers_aligned_gap_bottoms_and_refuses_others():
    inst = _mapping_instance()
    placement = Placement(inst)
    placement.place(2, 0)
    assert placement.candidates(0) == [(40, 0)]  # buffer 2 ([0, 40)) is live with buffer 0 at op 2
    placement.place(0, 40)
    assert placement.candidates(1) == []  # buffer 1 is live with both: no room left
    with pytest.raises(ValueError, match="not a candidate"):
        placement.place(1, 0)


@pytest.mark.parametrize("name", ["greedy-size", "msa", "first-fit"])
def test_greedy_placers_are_valid_on_mapping_and_msa_prefers_the_hot_buffer(name):
    inst = _mapping_instance()
    solution = GreedyPlacer(name).solve(inst)
    assert validate(inst, solution) == []
    if name == "msa":
        assert solution.offset[1] != SLOW  # 12 kB of traffic on 60 B: the most benefit per byte


def test_cpsat_maps_optimally_on_a_tiny_instance():
    inst = _mapping_instance()
    solution = CpSatMemMap().solve(inst, time_limit=10)
    assert validate(inst, solution) == []
    assert metrics(inst, solution)["runtime_s"] == pytest.approx(133e-9, rel=1e-3)


def test_cpsat_completes_a_partial_map_around_the_pinned_buffers():
    inst = _mapping_instance()
    # buffer 1 pinned at 40: buffer 2 (live with it at op 2) still fits below it, and the optimum (133 ns) stays
    moved = CpSatMemMap().solve(inst, time_limit=10, fixed={1: 40})
    assert validate(inst, moved) == [] and moved.offset.tolist() == [SLOW, 40, 0]
    assert metrics(inst, moved)["runtime_s"] == pytest.approx(133e-9, rel=1e-3)
    # buffer 0 pinned fast leaves no room for buffer 1: ops 1 and 2 read its 6000 B slowly (by hand, 1202.6 ns)
    for fixed in ({0: 0}, {1: SLOW}):
        completed = CpSatMemMap().solve(inst, time_limit=10, fixed=fixed)
        assert validate(inst, completed) == [] and all(completed.offset[b] == o for b, o in fixed.items())
        assert metrics(inst, completed)["runtime_s"] == pytest.approx(1202.6e-9, rel=1e-3)
    with pytest.raises(ValueError, match="aligned offset"):
        CpSatMemMap().solve(inst, time_limit=1, fixed={0: 2})
    packing = load_minimalloc_csv(_write_csv("pin.100.csv", [(0, 2, 60), (1, 3, 40)]))
    with pytest.raises(ValueError, match="packing instance"):
        CpSatMemMap().solve(packing, time_limit=1, fixed={0: 0})


def _write_csv(name, rows, tmp=[]):  # noqa: B006 - one temp folder for the module
    import tempfile
    from pathlib import Path

    if not tmp:
        tmp.append(Path(tempfile.mkdtemp()))
    path = tmp[0] / name
    path.write_text("id,lower,upper,size\n" + "".join(f"{i},{lo},{up},{sz}\n" for i, (lo, up, sz) in enumerate(rows)))
    return path


def test_minimalloc_loader_keeps_overlaps_and_reports_bad_files():
    inst = load_minimalloc_csv(_write_csv("t.1000.csv", [(0, 50, 300), (50, 100, 300), (20, 60, 400)]))
    assert inst.capacity_bytes == 1000 and inst.packing
    assert sorted(inst.overlaps[2]) == [0, 1] and inst.overlaps[0] == [2]
    assert inst.peak_live_bytes() == 700
    # ops are the distinct lowers (0, 20, 50), but each buffer keeps how long it is live in the file's own time units
    assert inst.live_end.tolist() == [2, 3, 3] and inst.live_time().tolist() == [50, 50, 40]
    packed = CpSatMemMap().solve(inst, time_limit=5)
    assert validate(inst, packed) == [] and metrics(inst, packed)["fast_bytes_peak"] == 700
    with pytest.raises(InstanceFormatError, match="capacity"):
        load_minimalloc_csv(_write_csv("nocap.csv", [(0, 1, 1)]))
    with pytest.raises(InstanceFormatError, match="line 2"):
        load_minimalloc_csv(_write_csv("bad.10.csv", [(5, 5, 1)]))


def test_minimalloc_suite_runs_on_the_leaderboard():
    from schedgym.bench import BenchRun, run_bench

    assert len(resolve_suite("minimalloc")) == 6
    rows = run_bench([BenchRun("memmap", "minimalloc_A", ["greedy-size", "first-fit"])], progress=False)["rows"]
    for row in rows:
        assert row["lower_bound"] == 1048576
        assert row["objective"] == row["metrics"]["fast_bytes_peak"] >= row["lower_bound"]
        assert row["valid"] == (row["objective"] <= 1048576)


def test_env_passes_check_env_and_its_return_is_the_improvement():
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    from schedgym.envs.memmap import MemoryMappingEnv

    inst = _mapping_instance()
    env = MemoryMappingEnv(inst, candidates=4)
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action"):
        env.step(4)
    total, done = 0.0, False
    while not done:
        _, reward, done, _, info = env.step(env.action_space.sample())
        total += reward
    assert validate(inst, info["solution"]) == []
    assert 100 * total == pytest.approx(info["metrics"]["improvement_pct"])
    packing = gym.make("schedgym/MemoryMapping-v0", instances="minimalloc_A").unwrapped
    obs, _ = packing.reset(seed=0)
    assert obs["action_mask"][0] == 0 and obs["action_mask"][1:].any()  # no slow memory when packing


def test_env_follows_an_earlier_map_where_it_still_fits_and_forks_into_an_independent_copy():
    from schedgym.envs.memmap import MemoryMappingEnv

    inst = _mapping_instance()  # buffers in the env's order: 0 and 1 (60 bytes, live together), then 2 (40 bytes)
    env = MemoryMappingEnv(inst, candidates=4)
    env.reset(seed=0)
    earlier = MemMapSolution(np.array([40, SLOW, 0]))
    assert env.order == [0, 1, 2] and env.follow_action(earlier) is None  # offset 40 is no gap bottom now
    env.step(1)  # buffer 0 at offset 0
    assert env.follow_action(earlier) == 0  # buffer 1 slow, as earlier
    twin = env.fork()
    twin.step(0)
    assert twin.follow_action(earlier) is None and twin.current_candidates == [(60, 0)]  # buffer 2: offset 0 is taken
    assert env.step_index == 1 and env.placement.offset.tolist() == [0, SLOW, SLOW]  # the original is untouched
    env.step(0)
    _, _, done, _, info = twin.step(1)
    _, _, also_done, _, also_info = env.step(1)
    assert done and also_done and np.array_equal(info["solution"].offset, also_info["solution"].offset)
    assert info["metrics"] == also_info["metrics"]


def test_rollouts_that_fork_their_prefixes_match_rollouts_that_replay_them(monkeypatch):
    from schedgym.agents.rollout import run_rollouts
    from schedgym.envs.memmap import MemoryMappingEnv
    from schedgym.envs.memmap.tracer import ModelSpec, trace_model
    from schedgym.registry import make_solver

    inst, other = trace_model(ModelSpec("transformer", (64, 4, 128, 1), 4), 0.5), trace_model(ModelSpec("mlp", (64, 128, 32), 4), 0.5)
    net = make_solver("memmap", "ppo").net
    greedy, other_greedy = run_rollouts(net, [inst], problem="memmap")[0], run_rollouts(net, [other], problem="memmap")[0]
    cuts = [9, 0, 4, 4, len(greedy.actions), 17]
    instances = [inst] * len(cuts) + [other, other]
    arguments = {
        "prefixes": [greedy.actions[:cut] for cut in cuts] + [[], other_greedy.actions[:4]],
        "runner_up_at": [{cut} for cut in cuts] + [set(), {4}],
        "follow": [greedy.solution if k % 2 else None for k in range(len(cuts))] + [None, other_greedy.solution],
        "problem": "memmap",
    }
    forked = run_rollouts(net, instances, **arguments)
    monkeypatch.delattr(MemoryMappingEnv, "fork")
    replayed = run_rollouts(net, instances, **arguments)
    assert [r.actions for r in forked] == [r.actions for r in replayed]
    assert all(np.array_equal(a.solution.offset, b.solution.offset) for a, b in zip(forked, replayed))
    assert forked[4].actions == greedy.actions  # a prefix of every decision: the episode ends in the replay
    assert any(r.actions != greedy.actions for r in forked[: len(cuts)])
    assert forked[-2].actions == other_greedy.actions and len(forked[-1].solution.offset) == other.n_buffers


def test_tracer_turns_a_tiny_mlp_into_buffers_live_ranges_bytes_and_flops():
    from schedgym.envs.memmap.tracer import PEAK_FLOPS, ModelSpec, trace_model

    inst = trace_model(ModelSpec("mlp", (4, 8, 2), 3), 0.5)
    # ops: linear, relu, linear; buffers: 3 outputs (float32) + weight and bias of both linears
    assert inst.n_ops == 3 and inst.n_buffers == 7
    assert inst.size_bytes[:3].tolist() == [3 * 8 * 4, 3 * 8 * 4, 3 * 2 * 4]
    assert list(zip(inst.live_start[:3].tolist(), inst.live_end[:3].tolist())) == [(0, 2), (1, 3), (2, 3)]
    assert sorted(inst.size_bytes[3:].tolist()) == [2 * 4, 8 * 4, 2 * 8 * 4, 8 * 4 * 4]
    assert inst.op_compute_s[0] == pytest.approx(2 * 3 * 8 * 4 / PEAK_FLOPS)
    # op 1 (relu) reads the first output and writes its own
    reads = sorted(inst.access_bytes[inst.access_op == 1].tolist())
    assert reads == [96.0, 96.0]
    assert inst.capacity_bytes % inst.alignment_bytes == 0 and inst.capacity_bytes <= inst.peak_live_bytes() // 2


@pytest.mark.parametrize("family,size", [("resnet", (8, 1, 8)), ("transformer", (16, 2, 8, 1))])
def test_every_family_traces_and_every_placer_is_valid_on_it(family, size):
    from schedgym.envs.memmap.tracer import ModelSpec, trace_model

    inst = trace_model(ModelSpec(family, size, 2), 0.25)
    for solver in (GreedyPlacer("greedy-size"), GreedyPlacer("msa"), GreedyPlacer("first-fit"), CpSatMemMap()):
        solution = solver.solve(inst, time_limit=5)
        assert validate(inst, solution) == [], solver.name
        assert 0.0 <= metrics(inst, solution)["improvement_pct"] < 100.0


def test_shipped_memmap_policy_places_validly_and_deterministically():
    from schedgym.agents.checkpoint import read_metadata, resolve_policy_path
    from schedgym.envs.memmap.tracer import ModelSpec, trace_model
    from schedgym.registry import make_solver

    assert read_metadata(resolve_policy_path("memmap-default")).problem == "memmap"
    solver = make_solver("memmap", "ppo")
    inst = trace_model(ModelSpec("transformer", (64, 4, 16, 1), 2), 0.3)
    first, second = solver.solve(inst), solver.solve(inst)
    assert validate(inst, first) == [] and np.array_equal(first.offset, second.offset)
    assert metrics(inst, first)["improvement_pct"] > 0.0


@pytest.mark.parametrize(
    "family, size, batch, moves",
    [("transformer", (64, 4, 128, 1), 4, "improves"), ("resnet", (16, 2, 16), 8, "walks the plateau")],
)
def test_memmap_sampler_descends_through_the_networks_runner_up_decisions_and_its_plateaus_and_keeps_the_best(monkeypatch, family, size, batch, moves):
    import torch

    from schedgym.agents import solvers
    from schedgym.agents.rollout import policy_envs
    from schedgym.envs.memmap import objective
    from schedgym.envs.memmap.tracer import ModelSpec, trace_model
    from schedgym.registry import make_solver

    inst = trace_model(ModelSpec(family, size, batch), 0.5)
    sampler = make_solver("memmap", "ppo-sample")
    assert sampler.search == "deviations" and (solvers.DEVIATION_RUN, solvers.DEVIATION_BATCH) == (2, 32)
    with pytest.raises(ValueError, match="unknown ppo-sample search 'beam'"):
        solvers.PpoSolver(problem="memmap", search="beam")
    batches = []
    real_run_rollouts = solvers.run_rollouts

    def recording_run_rollouts(net, instances, **kwargs):
        rollouts = real_run_rollouts(net, instances, **kwargs)
        batches.append((kwargs.get("greedy", True), kwargs.get("runner_up_at"), kwargs.get("follow"), rollouts))
        return rollouts

    def ranked_actions(actions):
        """Per state the actions pass: the allowed actions and their logits, best first, one state at a time, and
        the buffer decided there with the action that puts it at each allowed place (an offset, or SLOW)."""
        env = policy_envs("memmap", [inst], sampler.net)[0]
        observation, ranked = env.reset(seed=0)[0], []
        for action in actions:
            with torch.inference_mode():
                logits = sampler.net({key: torch.from_numpy(value[None]) for key, value in observation.items()})[0][0].numpy()
            allowed = np.flatnonzero(env.action_masks())
            order = np.argsort(-logits[allowed], kind="stable")
            places = {SLOW if a == 0 else env.current_candidates[a - 1][0]: int(a) for a in allowed}
            ranked.append((allowed[order], logits[allowed][order], env.order[env.step_index], places))
            observation = env.step(action)[0]
        return ranked

    def takes(choice, ranked_here, rank):
        allowed, logits, _, _ = ranked_here
        rank = min(rank, len(allowed) - 1)
        return choice in allowed and abs(logits[list(allowed).index(choice)] - logits[rank]) < 1e-5

    monkeypatch.setattr(solvers, "run_rollouts", recording_run_rollouts)
    first = sampler.solve(inst, seed=3)
    greedy_flag, _, _, (greedy,) = batches[0]
    assert greedy_flag is True and all(takes(a, r, 0) for a, r in zip(greedy.actions, ranked_actions(greedy.actions)))
    # The descent: rollouts that follow the current one up to a decision, take the network's second-ranked action
    # there (and at the next decision too), then go on greedily or keep the current rollout's later decisions where
    # they are still allowed; in batches of 32, earliest decision first, each run greedy then keeping. Only when
    # every move is tried does it move to the best rollout found (steepest descent), or, if none improved, to a
    # move as good as the best with another fast set (first found, first walked); then one round of whole samples.
    n = len(greedy.actions)
    all_runs = [run for t in range(n) for run in ([{t}, {t, t + 1}] if t + 1 < n else [{t}])]
    all_moves = [(run, keep) for run in all_runs for keep in (False, True)]

    def fast_set(rollout):
        return tuple(np.flatnonzero(rollout.solution.offset >= 0))

    def kept_or_best(origin, choice, ranked_here):
        """Whether ``choice`` puts the buffer where ``origin`` has it, if that is allowed, else is the network's best."""
        _, _, buffer, places = ranked_here
        offset = int(origin.solution.offset[buffer])
        return choice == places[offset] if offset in places else takes(choice, ranked_here, 0)

    pending, current, best, best_value = list(all_moves), greedy, greedy, objective(inst, greedy.solution)
    improved, improvements, walked, kept_checked = False, 0, 0, 0
    plateau, seen = [], {fast_set(greedy)}
    for flag, runs, follow, rollouts in batches[1:-1]:
        if not pending:
            if improved:
                current, pending, plateau, improvements = best, list(all_moves), [], improvements + 1
                seen.add(fast_set(best))
            else:
                current, pending, walked = plateau.pop(0), list(all_moves), walked + 1
            improved = False
        assert flag is True and runs == [run for run, _ in pending[:32]]
        assert [f is current.solution for f in follow] == [keep for _, keep in pending[:32]]
        pending = pending[32:]
        for index, (run, keep, rollout) in enumerate(zip(runs, [f is not None for f in follow], rollouts)):
            start = min(run)
            assert rollout.actions[:start] == current.actions[:start]
            if index % 4 in (0, 1) and improvements == walked == 0:  # spot checks, one state at a time, within float noise
                ranked = ranked_actions(rollout.actions)
                assert all(takes(rollout.actions[t], ranked[t], 1) for t in run)
                for t in range(max(run) + 1, len(rollout.actions)):
                    assert kept_or_best(current, rollout.actions[t], ranked[t]) if keep else takes(rollout.actions[t], ranked[t], 0)
                kept_checked += keep
            value = objective(inst, rollout.solution)
            if value < best_value * (1 - 1e-9):  # better by more than float noise
                best, best_value, improved = rollout, value, True
            elif value <= best_value * (1 + 1e-9) and fast_set(rollout) not in seen:
                seen.add(fast_set(rollout))
                plateau.append(rollout)
    assert pending == [] and plateau == [] and not improved and kept_checked > 0
    assert improvements >= 1 if moves == "improves" else walked >= 1
    flag, runs, _, rollouts = batches[-1]
    assert flag is False and runs is None and len(rollouts) == sampler.samples
    values = [objective(inst, r.solution) for *_, rollouts in batches for r in rollouts]
    assert validate(inst, first) == [] and objective(inst, first) <= min(values) * (1 + 1e-9)
    batches.clear()
    second = sampler.solve(inst, seed=3)
    assert np.array_equal(first.offset, second.offset)


def test_placer_network_scores_slow_and_each_candidate_and_checks_its_input():
    import torch

    from schedgym.agents.gnn import GnnConfig
    from schedgym.agents.gnn_memmap import MemMapGnn
    from schedgym.agents.rollout import stack_observations
    from schedgym.envs.memmap import MemoryMappingEnv

    net = MemMapGnn(GnnConfig(hidden_dim=16, head_hidden_dim=16)).eval()
    small, large = _mapping_instance(), load_minimalloc_csv(_write_csv("net.1000.csv", [(0, 5, 300), (2, 9, 200), (4, 6, 100)]))
    observations = [MemoryMappingEnv(inst, candidates=4, max_buffers=3, max_edges=6).reset(seed=0)[0] for inst in (small, large)]
    logits, value = net(stack_observations(observations))
    assert logits.shape == (2, 5) and value.shape == (2,)
    alone, _ = net(stack_observations(observations[:1]))
    assert torch.allclose(alone[0], logits[0], atol=1e-5)
    with pytest.raises(ValueError, match="candidate_features"):
        bad = stack_observations(observations)
        bad["candidate_features"] = bad["candidate_features"][..., :1]
        net(bad)


def test_tiny_memmap_training_run_with_the_cp_sat_teacher(tmp_path):
    from dataclasses import replace

    from schedgym.agents.checkpoint import read_metadata
    from schedgym.agents.gnn import GnnConfig
    from schedgym.agents.solvers import PpoSolver
    from schedgym.agents.train import TrainConfig, train

    config = replace(
        TrainConfig.for_problem("memmap"), trace_families="mlp", total_steps=64, n_envs=2, n_steps=32, batch_size=32,
        n_epochs=1, eval_every_steps=64, val_instances_per_size=2, torch_threads=1, bc_instances=2, bc_time_limit_s=0.5,
        bc_epochs=1, dagger_rounds=1, dagger_epochs=1, gnn=GnnConfig(hidden_dim=16, head_hidden_dim=16),
    )
    out = train(config, tmp_path / "m.zip", log_dir=None, progress_bar=False)
    meta = read_metadata(out)
    assert meta.problem == "memmap" and meta.train["trace_families"] == "mlp" and meta.figures["bc_decisions"] > 0
    assert len(meta.figures["bc_accuracy"]) == 2  # one cloning epoch, then one after the DAgger round
    inst = _mapping_instance()
    assert validate(inst, PpoSolver(problem="memmap", policy=str(out)).solve(inst)) == []
