"""JobShopGnn's dense rounds equal PyTorch Geometric message passing over the graph of to_graph_batch."""

import numpy as np
import torch
from torch_geometric.utils import scatter

from schedgym.agents.gnn import GnnConfig, JobShopGnn, relation_slots
from schedgym.envs.jobshop import load_benchmark
from schedgym.envs.jobshop.batched import JobShopBatch
from schedgym.graphs.jobshop import to_graph_batch


def message_passing_forward(net: JobShopGnn, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's function computed on the sparse graph: one scatter per round over the edge list."""
    graph = to_graph_batch(obs)
    x = torch.cat([net.op_encoder(graph.x_op), net.machine_encoder(graph.x_machine)])
    slots, weight = relation_slots(graph.edge_index, graph.edge_type, x.shape[0], net.n_relations)
    for conv, norm in zip(net.convs, net.norms):
        x = norm(x + torch.relu(conv(x, slots, weight)))
    n_op = graph.x_op.shape[0]
    op_mean = scatter(x[:n_op], graph.op_batch, dim=0, dim_size=graph.batch_size, reduce="mean")
    machine_mean = scatter(x[n_op:], graph.machine_batch, dim=0, dim_size=graph.batch_size, reduce="mean")
    candidate = torch.cat(
        [x[graph.candidate_op], x[graph.candidate_machine], op_mean[:, None, :].expand(-1, graph.candidate_op.shape[1], -1)], dim=-1
    )
    return net.actor(candidate).squeeze(-1), net.critic(torch.cat([op_mean, machine_mean], dim=-1)).squeeze(-1)


def _observations(n_steps: int) -> list[dict[str, torch.Tensor]]:
    """Batches of states part-way through schedules of mixed sizes, with machine breakdowns."""
    instances = [load_benchmark("ft06"), load_benchmark("la01"), load_benchmark("ft10")]
    batch = JobShopBatch(instances, n_envs=6, interruption_rate=0.01, seed=2)
    observation = batch.reset()
    rng = np.random.default_rng(0)
    taken = []
    for step in range(n_steps):
        if step % 7 == 0:
            taken.append({key: torch.as_tensor(value.copy()) for key, value in observation.items()})
        masks = batch.action_masks()
        observation, *_ = batch.step(np.array([rng.choice(np.flatnonzero(mask)) for mask in masks]))
    return taken


def test_dense_rounds_equal_message_passing_on_the_graph():
    torch.manual_seed(0)
    net = JobShopGnn(GnnConfig(hidden_dim=16, n_layers=3, head_hidden_dim=16))
    for obs in _observations(120):
        logits, value = net(obs)
        expected_logits, expected_value = message_passing_forward(net, obs)
        has_candidate = obs["job_candidate"] >= 0
        torch.testing.assert_close(logits[has_candidate], expected_logits[has_candidate], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(value, expected_value, rtol=1e-4, atol=1e-5)


def test_gradients_agree_too():
    torch.manual_seed(1)
    net = JobShopGnn(GnnConfig(hidden_dim=8, n_layers=2, head_hidden_dim=8))
    obs = _observations(30)[-1]
    mask = obs["job_candidate"] >= 0
    grads = []
    for forward in (net, lambda o: message_passing_forward(net, o)):
        net.zero_grad()
        logits, value = forward(obs)
        (logits[mask].sum() + value.sum()).backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for dense, sparse in zip(*grads):
        torch.testing.assert_close(dense, sparse, rtol=1e-4, atol=1e-5)
