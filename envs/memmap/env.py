"""The Gymnasium memory-mapping environment ``schedgym/MemoryMapping-v0`` (the mallocGame)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from schedgym.envs.memmap import kernels
from schedgym.envs.memmap.instance import MemMapInstance
from schedgym.envs.memmap.placement import Placement
from schedgym.envs.memmap.render import offset_time_rgb
from schedgym.envs.memmap.solution import SLOW, MemMapSolution, benefit_s, metrics, op_times_s
from schedgym.envs.memmap.suites import resolve_suite
from schedgym.envs.memmap.tracer import TraceGenerator
from schedgym.envs.sources import InstanceSource
from schedgym.envs.spaces import MaskedDiscrete
from schedgym.graphs.memmap import MemMapEncoder


def source_and_encoder(
    instances: MemMapInstance | Sequence[MemMapInstance] | TraceGenerator | str, candidates: int, max_buffers: int | None, max_edges: int | None
) -> tuple[InstanceSource, MemMapEncoder]:
    """The instance source of ``instances`` and the encoder sized for it (default: the largest instance, or the
    generator's padding), as ``MemoryMappingEnv`` and ``MemMapBatch`` both build them."""
    source = InstanceSource(instances, instance_type=MemMapInstance, generator_type=TraceGenerator, load=resolve_suite)
    if source.generator:
        buffers, edges = source.generator.max_buffers, source.generator.max_edges
    else:
        buffers = source.largest(lambda inst: inst.n_buffers)
        edges = source.largest(lambda inst: sum(len(o) for o in inst.overlaps))
    return source, MemMapEncoder(max_buffers or buffers, candidates, max(1, max_edges or edges))


class MemoryMappingEnv(gym.Env):
    """Place the buffers of a program one by one: slow memory, or fast memory at one of the candidate offsets.

    ## Description
    Buffers come in a fixed order (largest first). For the current buffer the candidates are the aligned bottoms of
    the offset gaps free during its whole live range (lowest first, at most ``candidates`` of them); see
    :class:`schedgym.envs.memmap.Placement`.

    ## Action Space
    ``Discrete(candidates + 1)``: 0 = slow memory (masked on packing instances, where every buffer goes fast),
    ``k + 1`` = candidate ``k``. Masked actions raise ``ValueError``.

    ## Observation Space
    A ``Dict`` of buffer nodes, their time-overlap edges and the candidates, see
    :class:`schedgym.graphs.memmap.MemMapEncoder`.

    ## Starting State
    Everything in slow memory, the first buffer to decide; the instance is drawn from the
    :class:`~schedgym.envs.memmap.tracer.TraceGenerator` or the list (or given with
    ``reset(options={"instance": inst})``).

    ## Reward
    The decrease of the modelled runtime caused by the step, divided by the all-slow runtime: the return is the
    fractional improvement over all-slow. On packing instances (no runtime to win) minus the increase of the peak
    offset, divided by the capacity.

    ## Episode End
    Terminates when every buffer is decided; never truncates.

    ## Information
    ``buffer`` (the next to decide); at termination ``solution`` and ``metrics``. The env's ``current_candidates``
    lists the (offset, bytes left in its gap) that action ``k + 1`` stands for. The placement logic and the
    runtime model run in the compiled kernels of :mod:`schedgym.envs.memmap.kernels` (the runtime updated per
    decision), which the batched engine :class:`~schedgym.envs.memmap.batched.MemMapBatch` shares.

    ## Arguments
    ``gym.make("schedgym/MemoryMapping-v0", instances="minimalloc")``, ``candidates`` (default 8).

    ## References
    Wang et al., Optimizing memory mapping using deep reinforcement learning (mallocMuZero), 2023.
    Moffitt, MiniMalloc: a lightweight memory allocator for hardware-accelerated machine learning, ASPLOS 2023.

    ## Version History
    v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        instances: MemMapInstance | Sequence[MemMapInstance] | TraceGenerator | str = "minimalloc",
        *,
        candidates: int = 8,
        max_buffers: int | None = None,
        max_edges: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not supported; use 'rgb_array' or None")
        self.render_mode = render_mode
        self.source, self.encoder = source_and_encoder(instances, candidates, max_buffers, max_edges)
        self.observation_space = self.encoder.observation_space
        self.action_space = MaskedDiscrete(candidates + 1, self.action_masks)
        self.placement: Placement | None = None
        self._observation: dict[str, np.ndarray] = {}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        instance = self.source.draw(self.np_random, options)
        self.instance = instance
        self.tables = kernels.allocate_tables((), *kernels.table_sizes(instance))
        kernels.fill_tables(self.tables, instance)
        self.state = kernels.allocate_state((), instance.n_buffers, instance.n_ops, self.encoder.candidates)
        self.placement = Placement(instance, self.tables, self.state.offset)
        #: The buffers in decision order.
        self.order: list[int] = self.tables.order.tolist()
        kernels.reset_episode(self.tables, self.state, float(op_times_s(instance, np.zeros(instance.n_buffers, dtype=bool)).sum()))
        self._observation = self.encoder.allocate(())
        self.encoder.reset(self._observation, instance, benefit_s(instance))
        self._observe_after(-1)
        return self._observation_copy(), {"buffer": self.order[0]}

    @property
    def step_index(self) -> int:
        """Buffers decided so far."""
        return int(self.state.counts[kernels.STEP])

    @property
    def current_candidates(self) -> list[tuple[int, int]]:
        """(offset, bytes left in its gap; -1 for the unbounded top of a packing) that action ``k + 1`` stands for."""
        count = int(self.state.counts[kernels.N_CANDIDATES])
        return list(zip(self.state.candidate_offset[:count].tolist(), self.state.candidate_left[:count].tolist()))

    def render(self):
        """The offset-time picture of the buffers placed so far (``rgb_array``), or None."""
        if self.render_mode == "rgb_array" and self.placement is not None:
            return offset_time_rgb(self.instance, self.placement.solution())
        return None

    def step(self, action):
        if self.placement is None:
            raise RuntimeError("call reset() before step()")
        action = int(action)
        mask = self.action_masks()
        if not 0 <= action < len(mask) or not mask[action]:
            raise ValueError(f"invalid action {action}: allowed now are {np.flatnonzero(mask).tolist()} (0 = slow, k + 1 = candidate k)")
        inst, state = self.instance, self.state
        runtime_before, peak_before = float(state.time_s[kernels.RUNTIME]), int(state.counts[kernels.PEAK])
        buffer = kernels.decide(self.tables, state, action - 1)
        self._observe_after(buffer)
        if inst.packing:
            reward = -(int(state.counts[kernels.PEAK]) - peak_before) / inst.capacity_bytes
        else:
            all_slow = float(state.time_s[kernels.ALL_SLOW])
            reward = (runtime_before - float(state.time_s[kernels.RUNTIME])) / all_slow if all_slow > 0 else 0.0
        terminated = self.step_index == inst.n_buffers
        info = {"buffer": self.order[self.step_index] if not terminated else -1}
        if terminated:
            info["solution"] = self.placement.solution()
            info["metrics"] = metrics(inst, info["solution"])
        return self._observation_copy(), reward, terminated, False, info

    def action_masks(self) -> np.ndarray:
        """bool ``[candidates + 1]``: slow memory (mapping only) and the candidates of the current buffer."""
        if not self._observation:
            return np.zeros(self.encoder.candidates + 1, dtype=bool)
        return self._observation["action_mask"].astype(bool)

    def fork(self) -> MemoryMappingEnv:
        """A copy of this env in its current state that steps on without touching this one (it shares the instance
        and the kernel tables, which no step writes)."""
        twin = copy.copy(self)
        twin.state = kernels.MemMapState(*(array.copy() for array in self.state))
        twin.placement = self.placement.copy(offset=twin.state.offset)
        twin._observation = self._observation_copy()
        if self._np_random is not None:  # a copy of the generator's state (deepcopy would pickle it: 100x slower)
            bit_generator = type(self._np_random.bit_generator)()
            bit_generator.state = self._np_random.bit_generator.state
            twin._np_random = np.random.Generator(bit_generator)
        return twin

    def follow_action(self, solution: MemMapSolution) -> int | None:
        """The action that decides the current buffer as ``solution`` does (slow memory, or fast memory at the same
        offset), or None if that is not allowed now (the offset is no candidate any more, or slow memory is masked)."""
        offset = int(solution.offset[self.order[self.step_index]])
        if offset == SLOW:
            return 0 if self.action_masks()[0] else None
        for k, (candidate, _) in enumerate(self.current_candidates):
            if candidate == offset:
                return k + 1
        return None

    def _observe_after(self, decided: int) -> None:
        obs = self._observation
        kernels.observe(self.tables, self.state, decided, obs["buffer_features"], obs["candidate_features"], obs["action_mask"])

    def _observation_copy(self) -> dict[str, np.ndarray]:
        return {key: value.copy() for key, value in self._observation.items()}
