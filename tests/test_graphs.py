import numpy as np
import torch

from schedgym.agents.rollout import stack_observations
from schedgym.envs.jobshop import JobShopEnv, generate_taillard
from schedgym.graphs import RELATIONS, to_graph_batch


def _mid_episode(inst, steps, **padding):
    env = JobShopEnv(inst, action_filter="legal", **padding)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        obs, *_ = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
    return env, obs


def test_edges_per_relation():
    inst = generate_taillard(5, 4, 3)
    env, obs = _mid_episode(inst, 9, max_jobs=6, max_ops=5, max_machines=5)
    graph = to_graph_batch(stack_observations([obs]))
    counts = torch.bincount(graph.edge_type, minlength=len(RELATIONS)).tolist()
    per_machine = [int((env.sim.machine_ops[m, : env.sim.machine_count[m]] >= 0).sum()) for m in range(inst.n_machines)]
    sequence_edges = sum(max(c - 1, 0) for c in per_machine)
    assert counts == [5 * 3, 5 * 3, sequence_edges, sequence_edges, 20, 20]
    assert graph.x_op.shape == (20, obs["op_features"].shape[1]) and graph.x_machine.shape[0] == 4


def test_machine_sequence_edges_follow_start_times():
    inst = generate_taillard(4, 3, 5)
    env, obs = _mid_episode(inst, 12)
    graph = to_graph_batch(stack_observations([obs]))
    seq = graph.edge_index[:, graph.edge_type == RELATIONS.index("machine_next")]
    starts = env.sim.start_times.ravel()
    machines = inst.machines.ravel()
    for src, dst in seq.T.tolist():
        assert machines[src] == machines[dst] and starts[src] < starts[dst]


def test_candidates_point_at_next_operations():
    inst = generate_taillard(3, 3, 1)
    env, obs = _mid_episode(inst, 2)
    graph = to_graph_batch(stack_observations([obs]))
    for job in range(3):
        if env.sim.next_op[job] < 3:
            node = graph.candidate_op[0, job].item()
            assert node == job * 3 + env.sim.next_op[job]
            assert graph.candidate_machine[0, job].item() == graph.x_op.shape[0] + inst.machines[job, env.sim.next_op[job]]
