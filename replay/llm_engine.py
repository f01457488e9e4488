"""The LLM engine of the GPU replay: a Llama-style transformer with random weights serving N replicas on one device.

What runs:

* :class:`LlamaModel`: RMSNorm, rotary position embedding, grouped-query attention, SwiGLU MLP, embeddings tied to
  the output head; weights drawn from a seeded generator (nothing is downloaded). Every iteration is one forward
  pass over the batch's tokens packed in one ``[n_tokens, hidden]`` matrix: the prefill chunks' tokens, then one
  token per decode (continuous batching: requests join and leave the batch between iterations).
* :class:`PagedKvCache`: one static pool of KV blocks, allocated once, split into a disjoint range of blocks per
  replica (each replica its own cache, its own free list and block tables; the weights are shared). A paged pool
  rather than a slot table of ``max_batch x max context``: a replica's KV capacity (``kv_blocks x block_tokens``,
  131,072 tokens = 4 GiB for the 1B model with the suites' replicas) is far below ``max_batch x`` the longest
  context (256 x 8k tokens = 64 GiB), so only a pool fits 4-8 replicas in 80 GB; and it holds exactly the blocks the
  simulator counts, so the simulator's admission and preemption decisions are also the engine's.
* Attention. A prefill chunk gathers its request's blocks (the cached context and the chunk itself, written
  first) and runs :func:`torch.nn.functional.scaled_dot_product_attention` with a lower-right causal mask. Decodes
  attend block by block: every (decode, block) pair of the batch is one row of a packed list, the partial
  softmaxes of a decode's blocks are combined by a max and two sums over its rows. The work is proportional to the
  batch's total context, as with a paged-attention kernel, instead of ``batch x`` the longest context of a padded
  batch.
* CUDA graphs: a decode-only iteration replays a graph captured (on first use) for its batch-size bucket (powers
  of two to 32, then multiples of 32) and its block-count bucket (multiples of 16 blocks, then eight buckets per
  doubling); the batch is padded to the bucket (padding rows and blocks are masked). Its time therefore depends
  on the batch-size bucket and on the bucketed sum over the decodes of ``ceil((context + 1) / block_tokens)``,
  i.e. on the batch size and the mean context, the two axes of the latency profile. An iteration with prefill
  chunks has shapes of its own (chunk lengths and contexts), so it is captured into a graph of its own and
  replayed once, unpadded: on CUDA no iteration's time includes the host's kernel launches, which on a slow host
  would outlast the GPU work of a prefill.
* Timing: on CUDA an iteration is timed with ``torch.cuda.Event(enable_timing=True)`` around its graph replay (a
  decode's also around its input upload); on the CPU (eager, no graphs) with ``time.perf_counter`` around input
  upload and forward.

The tokens are arbitrary (a hash of request and position) and the sampled token is not fed back: with random
weights only the shapes matter. A prefix-cache hit's tokens get blocks of their own whose content is not copied.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.bias import causal_lower_right

from schedgym.envs.llmrouting.simulator import ReplicaSpec
from schedgym.replay.device import resolve_device

#: Attention kernels a prefill chunk may use: not cuDNN's, which allocates its workspace on first use (a CUDA-graph
#: capture forbids that).
SDPA_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


@dataclass(frozen=True)
class LlamaConfig:
    """Shape of the transformer.

    Attributes:
        hidden: model width. layers: decoder layers. heads / kv_heads: query / key-value heads (grouped-query
        attention). head_dim: width of one head. mlp: SwiGLU inner width. vocab: vocabulary size.
        dtype: ``bfloat16`` or ``float32``. rope_theta: rotary base. norm_eps: RMSNorm epsilon.
    """

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    mlp: int
    vocab: int
    dtype: str = "bfloat16"
    rope_theta: float = 500_000.0
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        if self.dtype not in ("bfloat16", "float32"):
            raise ValueError(f"dtype {self.dtype!r}: choose bfloat16 or float32")

    @classmethod
    def llama_1b(cls) -> "LlamaConfig":
        """The shape of Llama-3.2-1B (1.24 B parameters, 2.5 GB in bfloat16)."""
        return cls(hidden=2048, layers=16, heads=32, kv_heads=8, head_dim=64, mlp=8192, vocab=128_256)

    @classmethod
    def llama_8b(cls) -> "LlamaConfig":
        """The shape of Llama-3-8B (7.5 B parameters with the embeddings tied, as this engine builds every model;
        the released model unties its output head, 8.0 B)."""
        return cls(hidden=4096, layers=32, heads=32, kv_heads=8, head_dim=128, mlp=14_336, vocab=128_256)

    @classmethod
    def tiny(cls) -> "LlamaConfig":
        """A 0.1 M-parameter float32 model for CPU tests."""
        return cls(hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, mlp=128, vocab=512, dtype="float32")

    @classmethod
    def for_device(cls, device: str) -> "LlamaConfig":
        """The model the CLI serves on ``device``: the 1B shape on ``cuda``, the tiny one on ``cpu``."""
        return cls.llama_1b() if device == "cuda" else cls.tiny()

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    @property
    def n_params(self) -> int:
        per_layer = self.hidden * (self.heads + 2 * self.kv_heads) * self.head_dim + self.heads * self.head_dim * self.hidden
        per_layer += 3 * self.hidden * self.mlp + 2 * self.hidden
        return self.vocab * self.hidden + self.layers * per_layer + self.hidden

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of keys and values one token keeps in the cache, over all layers."""
        return 2 * self.layers * self.kv_heads * self.head_dim * torch.tensor([], dtype=self.torch_dtype).element_size()

    @property
    def weight_bytes(self) -> int:
        return self.n_params * torch.tensor([], dtype=self.torch_dtype).element_size()

    def describe(self) -> str:
        return (f"Llama-style, hidden {self.hidden}, {self.layers} layers, {self.heads} heads, {self.kv_heads} KV heads, head {self.head_dim}, "
                f"MLP {self.mlp}, vocab {self.vocab}, {self.n_params / 1e6:,.1f} M parameters, random {self.dtype} weights")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Layer:
    attn_norm: torch.Tensor  # [hidden]
    wqkv: torch.Tensor  # [hidden, (heads + 2 kv_heads) head_dim]
    wo: torch.Tensor  # [heads head_dim, hidden]
    mlp_norm: torch.Tensor  # [hidden]
    w_gate_up: torch.Tensor  # [hidden, 2 mlp]
    w_down: torch.Tensor  # [mlp, hidden]


@dataclass
class Batch:
    """The device tensors of one iteration: ``n_tokens`` rows, the chunks' tokens in order, then the decodes.

    Attributes:
        token_ids / positions: int64 ``[n_tokens]``.
        write_blocks / write_offsets: int64 ``[n_tokens]``, the KV block and the slot in it each token's key and
            value are written to.
        chunks: per prefill chunk (first row, tokens, context tokens including the chunk, its request's blocks
            int64 ``[ceil(context / block_tokens)]``).
        n_decodes: decode rows, the last rows of the batch.
        page_blocks / page_rows / page_tokens: int64 ``[n_pages]``: the (decode, block) pairs, each with the
            block, the decode's row among the decodes, and its valid tokens (0 for padding).
        logit_rows: int64 ``[n_logits]``: the rows whose next token is computed (each chunk's last, every decode).
    """

    token_ids: torch.Tensor
    positions: torch.Tensor
    write_blocks: torch.Tensor
    write_offsets: torch.Tensor
    chunks: list[tuple[int, int, int, torch.Tensor]]
    n_decodes: int
    page_blocks: torch.Tensor
    page_rows: torch.Tensor
    page_tokens: torch.Tensor
    logit_rows: torch.Tensor


class PagedKvCache:
    """Keys and values of every layer in ``n_blocks`` blocks of ``block_tokens`` tokens, allocated once:
    ``k`` and ``v`` are ``[layers, n_blocks, kv_heads, block_tokens, head_dim]``. The last block is the padding
    block that padded rows write to and padded pages read."""

    def __init__(self, config: LlamaConfig, n_blocks: int, block_tokens: int, device: torch.device) -> None:
        shape = (config.layers, n_blocks + 1, config.kv_heads, block_tokens, config.head_dim)
        self.k = torch.zeros(shape, dtype=config.torch_dtype, device=device)
        self.v = torch.zeros(shape, dtype=config.torch_dtype, device=device)
        self.block_tokens = block_tokens
        self.padding_block = n_blocks

    @property
    def size_bytes(self) -> int:
        return 2 * self.k.numel() * self.k.element_size()


class LlamaModel:
    """Random-weight Llama-style decoder (weights shared by every replica).

    Projections are drawn from N(0, 1/fan_in), the two that write into the residual stream (attention output, MLP
    down) further scaled by 1/sqrt(2 layers), embeddings from N(0, 1), norms at 1, so activations stay of order
    one through every layer.
    """

    def __init__(self, config: LlamaConfig, device: torch.device, seed: int = 0) -> None:
        self.config = config
        generator = torch.Generator(device=device).manual_seed(seed)
        dtype, c = config.torch_dtype, config

        def draw(rows: int, cols: int, scale: float = 1.0) -> torch.Tensor:
            weight = torch.randn(rows, cols, generator=generator, device=device, dtype=dtype)
            return weight.mul_(scale / math.sqrt(rows))

        ones = torch.ones(c.hidden, dtype=dtype, device=device)
        residual = 1.0 / math.sqrt(2 * c.layers)
        self.embed = torch.randn(c.vocab, c.hidden, generator=generator, device=device, dtype=dtype)  # [vocab, hidden]
        self.layers = [
            _Layer(ones, draw(c.hidden, (c.heads + 2 * c.kv_heads) * c.head_dim), draw(c.heads * c.head_dim, c.hidden, residual), ones,
                   draw(c.hidden, 2 * c.mlp), draw(c.mlp, c.hidden, residual))
            for _ in range(c.layers)
        ]
        self.final_norm = ones
        self.inv_freq = c.rope_theta ** (-torch.arange(0, c.head_dim, 2, device=device, dtype=torch.float32) / c.head_dim)  # [head_dim / 2]

    def forward(self, batch: Batch, cache: PagedKvCache) -> torch.Tensor:
        """Run the batch, writing its keys and values into ``cache``; returns the logits ``[n_logits, vocab]``."""
        c = self.config
        n = len(batch.token_ids)
        x = F.embedding(batch.token_ids, self.embed)  # [n, hidden]
        angles = batch.positions.to(torch.float32)[:, None] * self.inv_freq  # [n, head_dim / 2]
        cos, sin = angles.cos().to(x.dtype)[:, None], angles.sin().to(x.dtype)[:, None]  # [n, 1, head_dim / 2]
        invalid = torch.arange(cache.block_tokens, device=x.device) >= batch.page_tokens[:, None]  # [n_pages, block_tokens]
        for index, layer in enumerate(self.layers):
            h = F.rms_norm(x, (c.hidden,), layer.attn_norm, c.norm_eps)
            qkv = h @ layer.wqkv  # [n, (heads + 2 kv_heads) head_dim]
            qk = _rotate(qkv[:, : (c.heads + c.kv_heads) * c.head_dim].view(n, c.heads + c.kv_heads, c.head_dim), cos, sin)
            q, k = qk[:, : c.heads], qk[:, c.heads:]
            cache.k[index][batch.write_blocks, :, batch.write_offsets] = k
            cache.v[index][batch.write_blocks, :, batch.write_offsets] = qkv[:, (c.heads + c.kv_heads) * c.head_dim:].view(n, c.kv_heads, c.head_dim)
            x = x + self._attention(q, batch, cache.k[index], cache.v[index], invalid) @ layer.wo
            h = F.rms_norm(x, (c.hidden,), layer.mlp_norm, c.norm_eps)
            gate, up = (h @ layer.w_gate_up).chunk(2, dim=-1)
            x = x + (F.silu(gate) * up) @ layer.w_down
        return F.rms_norm(x[batch.logit_rows], (c.hidden,), self.final_norm, c.norm_eps) @ self.embed.T

    def _attention(self, q: torch.Tensor, batch: Batch, k_pool: torch.Tensor, v_pool: torch.Tensor, invalid: torch.Tensor) -> torch.Tensor:
        """Attention of the batch's queries ``q`` ``[n, heads, head_dim]`` over the pool of one layer; returns
        ``[n, heads head_dim]``."""
        c = self.config
        group = c.heads // c.kv_heads
        outputs = []
        for first, tokens, context, blocks in batch.chunks:
            keys, values = (_contiguous_heads(pool.index_select(0, blocks), group, context) for pool in (k_pool, v_pool))  # [heads, context, head_dim]
            query = q[first:first + tokens].transpose(0, 1)  # [heads, tokens, head_dim]
            with sdpa_kernel(SDPA_BACKENDS):
                out = F.scaled_dot_product_attention(query[None], keys[None], values[None], attn_mask=causal_lower_right(tokens, context))
            outputs.append(out[0].transpose(0, 1).reshape(tokens, c.heads * c.head_dim))
        if batch.n_decodes:
            b = batch.n_decodes
            query = (q[len(q) - b:] * c.head_dim**-0.5).view(b, c.kv_heads, group, c.head_dim).index_select(0, batch.page_rows)  # [pages, kv, group, dim]
            keys, values = k_pool.index_select(0, batch.page_blocks), v_pool.index_select(0, batch.page_blocks)  # [pages, kv, block, dim]
            scores = (query @ keys.transpose(-1, -2)).float().masked_fill_(invalid[:, None, None, :], -math.inf)  # [pages, kv, group, block]
            page_max = scores.amax(-1)  # [pages, kv, group]
            row_max = torch.full((b, c.kv_heads, group), -1e30, device=q.device).scatter_reduce_(0, batch.page_rows[:, None, None].expand_as(page_max), page_max, "amax")
            weights = torch.exp(scores - row_max.index_select(0, batch.page_rows)[..., None])  # [pages, kv, group, block]
            total = torch.zeros(b, c.kv_heads, group, device=q.device).index_add_(0, batch.page_rows, weights.sum(-1))
            partial = (weights.to(values.dtype) @ values).float()  # [pages, kv, group, dim]
            mixed = torch.zeros(b, c.kv_heads, group, c.head_dim, device=q.device).index_add_(0, batch.page_rows, partial)
            outputs.append((mixed / total.clamp_min(1e-30)[..., None]).to(q.dtype).view(b, c.heads * c.head_dim))
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of ``x`` ``[n, heads, head_dim]`` (halves rotated, as Llama does)."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)


def _contiguous_heads(blocks: torch.Tensor, group: int, context: int) -> torch.Tensor:
    """Gathered blocks ``[n_blocks, kv_heads, block_tokens, head_dim]`` as ``[heads, context, head_dim]`` (each
    KV head repeated for its ``group`` query heads)."""
    n_blocks, kv_heads, block_tokens, head_dim = blocks.shape
    per_head = blocks.permute(1, 0, 2, 3)[:, None].expand(kv_heads, group, n_blocks, block_tokens, head_dim)
    return per_head.reshape(kv_heads * group, n_blocks * block_tokens, head_dim)[:, :context]


def _as_batch_arrays(chunks: np.ndarray, decodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``chunks`` as int64 ``[n_chunks, 3]`` and ``decodes`` as int64 ``[n_decodes, 2]`` (either may be empty)."""
    return np.asarray(chunks, dtype=np.int64).reshape(-1, 3), np.asarray(decodes, dtype=np.int64).reshape(-1, 2)


def batch_bucket(n_decodes: int) -> int:
    """Decode rows a graph is captured for: the next power of two up to 32, then the next multiple of 32."""
    return 1 << max(0, n_decodes - 1).bit_length() if n_decodes <= 32 else -(-n_decodes // 32) * 32


def page_bucket(n_pages: int) -> int:
    """(decode, block) pairs a graph is captured for: the next multiple of 16, or of 1/8 of the power of two
    below (eight buckets per doubling)."""
    step = max(16, 1 << max(0, n_pages.bit_length() - 4))
    return -(-n_pages // step) * step


class _ReplicaKv:
    """Which blocks of the pool one replica's requests hold.

    Attributes:
        free: block ids not in use (a stack).
        slot_of: request -> its row in ``table``.
        table: int64 ``[max_batch, kv_blocks]``: the blocks of the request in each slot, in position order.
        held: int64 ``[max_batch]``: blocks in each slot.
    """

    def __init__(self, first_block: int, spec: ReplicaSpec) -> None:
        self.blocks = range(first_block, first_block + spec.kv_blocks)
        self.block_tokens = spec.block_tokens
        self.table = np.zeros((spec.max_batch, spec.kv_blocks), dtype=np.int64)
        self.held = np.zeros(spec.max_batch, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self.free = list(reversed(self.blocks))
        self.free_slots = list(reversed(range(len(self.held))))
        self.slot_of: dict[int, int] = {}
        self.held[:] = 0

    def hold(self, request: int, tokens: int) -> int:
        """Give ``request`` blocks for its first ``tokens`` tokens; returns its slot."""
        slot = self.slot_of.get(request)
        if slot is None:
            if not self.free_slots:
                raise RuntimeError(f"more than {len(self.held)} requests hold KV blocks; the simulator admits at most max_batch")
            slot = self.slot_of[request] = self.free_slots.pop()
        needed = -(-tokens // self.block_tokens)
        if needed - self.held[slot] > len(self.free):
            raise RuntimeError(f"KV pool of {len(self.blocks)} blocks exhausted by request {request}; the simulator's block accounting was not followed")
        for column in range(int(self.held[slot]), needed):
            self.table[slot, column] = self.free.pop()
        self.held[slot] = max(self.held[slot], needed)
        return slot

    def release(self, request: int) -> None:
        slot = self.slot_of.pop(request, None)
        if slot is None:
            return  # admitted and preempted before it ever ran
        self.free.extend(self.table[slot, : self.held[slot]].tolist())
        self.held[slot] = 0
        self.free_slots.append(slot)


class LlmEngine:
    """Replicas of one :class:`LlamaModel` serving the iterations a :class:`ServingSimulator` decides (its
    :class:`IterationExecutor`): per replica a range of the static KV pool; on CUDA decode-only iterations from a
    graph per bucket and iterations with prefill chunks from a graph of their own; each iteration measured.

    Attributes:
        busy_s: measured seconds of every iteration run so far.
        iterations: iterations run so far.
        shortest_s: the shortest iteration measured.
    """

    def __init__(self, config: LlamaConfig, replicas: Sequence[ReplicaSpec], *, device: str = "cpu", seed: int = 0) -> None:
        if not replicas:
            raise ValueError("need at least one replica")
        if len({spec.block_tokens for spec in replicas}) != 1:
            raise ValueError(f"every replica needs the same block_tokens, got {sorted({spec.block_tokens for spec in replicas})}")
        self.config = config
        self.replicas = tuple(replicas)
        self.device = resolve_device(device)
        self.model = LlamaModel(config, self.device, seed)
        self.cache = PagedKvCache(config, sum(spec.kv_blocks for spec in replicas), replicas[0].block_tokens, self.device)
        starts = np.cumsum([0] + [spec.kv_blocks for spec in replicas])
        self._kv = [_ReplicaKv(int(start), spec) for start, spec in zip(starts, replicas)]
        self.busy_s, self.iterations, self.shortest_s = 0.0, 0, math.inf
        self._graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, Batch]] = {}
        if self.device.type == "cuda":
            max_rows = batch_bucket(max(spec.max_batch for spec in replicas))
            max_pages = page_bucket(max(spec.kv_blocks for spec in replicas))
            self._staging = torch.empty(4 * max_rows + 3 * max_pages, dtype=torch.int64, pin_memory=True)
            self._inputs = torch.empty_like(self._staging, device=self.device)
            self._next_tokens = torch.empty(max_rows, dtype=torch.int64, device=self.device)
            self._pool, self._once_pool = torch.cuda.graph_pool_handle(), torch.cuda.graph_pool_handle()
            self._capture_stream = torch.cuda.Stream(self.device)
            self._last_once: torch.cuda.CUDAGraph | None = None
            self.model.forward(self._decode_batch(1, 1), self.cache)  # lazy CUDA state (cuBLAS) made outside any capture
            self._start, self._end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    # ------------------------------------------------------------------------------------------------ executor
    def run_iteration(self, replica: int, chunks: np.ndarray, decodes: np.ndarray) -> float:
        """Run one iteration of ``replica`` (see :class:`IterationExecutor`); returns its measured seconds."""
        chunks, decodes = _as_batch_arrays(chunks, decodes)
        arrays, chunk_blocks = self._host_batch(replica, chunks, decodes)
        if self.device.type == "cpu":
            started = time.perf_counter()
            self.model.forward(self._upload(arrays, chunks, chunk_blocks, len(decodes)), self.cache)
            duration_s = time.perf_counter() - started
        elif len(chunks):
            duration_s = self._replay_once(self._upload(arrays, chunks, chunk_blocks, len(decodes)))
        else:
            duration_s = self._replay_decode(arrays)
        self.busy_s += duration_s
        self.iterations += 1
        self.shortest_s = min(self.shortest_s, duration_s)
        return duration_s

    def release(self, replica: int, request: int) -> None:
        """``request`` finished or was preempted: its blocks return to ``replica``'s free list."""
        self._kv[replica].release(request)

    def logits(self, replica: int, chunks: np.ndarray, decodes: np.ndarray) -> torch.Tensor:
        """Run one iteration eagerly, untimed (as :meth:`run_iteration` takes it); returns the logits
        ``[n_chunks + n_decodes, vocab]`` of each chunk's last token and of each decode."""
        chunks, decodes = _as_batch_arrays(chunks, decodes)
        arrays, chunk_blocks = self._host_batch(replica, chunks, decodes)
        return self.model.forward(self._upload(arrays, chunks, chunk_blocks, len(decodes)), self.cache)

    # ------------------------------------------------------------------------------------------------ queries
    def blocks_in_use(self, replica: int) -> int:
        kv = self._kv[replica]
        return len(kv.blocks) - len(kv.free)

    def requests_held(self, replica: int) -> list[int]:
        """Requests holding KV blocks at ``replica``."""
        return sorted(self._kv[replica].slot_of)

    @property
    def n_graphs(self) -> int:
        """Decode graphs captured so far (one per batch-size and block-count bucket met)."""
        return len(self._graphs)

    def reset(self) -> None:
        """Free every replica's blocks and zero the counters (captured graphs stay)."""
        for kv in self._kv:
            kv.reset()
        self.busy_s, self.iterations, self.shortest_s = 0.0, 0, math.inf

    # ------------------------------------------------------------------------------------------------ internals
    def _host_batch(self, replica: int, chunks: np.ndarray, decodes: np.ndarray) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """Hold the blocks the iteration writes and build its index arrays (see :class:`Batch`)."""
        kv = self._kv[replica]
        size = kv.block_tokens
        positions, slots, chunk_blocks = [], [], []
        for request, first, tokens in chunks.tolist():
            slot = kv.hold(request, first + tokens)
            positions.append(np.arange(first, first + tokens))
            slots.append(np.full(tokens, slot))
            chunk_blocks.append(kv.table[slot, : kv.held[slot]])
        decode_slots = np.array([kv.hold(request, context + 1) for request, context in decodes.tolist()], dtype=np.int64)
        contexts = decodes[:, 1]
        positions.append(contexts)
        slots.append(decode_slots)
        position = np.concatenate(positions)
        slot = np.concatenate(slots)
        requests = np.concatenate([np.repeat(chunks[:, 0], chunks[:, 2]), decodes[:, 0]])
        counts = contexts // size + 1  # blocks each decode reads
        columns = np.arange(int(counts.max()) if len(counts) else 0)
        page_tokens = np.full(int(counts.sum()), size, dtype=np.int64)
        page_tokens[np.cumsum(counts) - 1] = contexts % size + 1
        n_chunk_tokens = int(chunks[:, 2].sum())
        arrays = {
            "token_ids": (requests * 1_000_003 + position) % self.config.vocab,
            "positions": position,
            "write_blocks": kv.table[slot, position // size],
            "write_offsets": position % size,
            "page_blocks": kv.table[decode_slots[:, None], columns][columns < counts[:, None]],
            "page_rows": np.repeat(np.arange(len(decodes)), counts),
            "page_tokens": page_tokens,
            "logit_rows": np.concatenate([np.cumsum(chunks[:, 2]) - 1, n_chunk_tokens + np.arange(len(decodes))]),
        }
        return arrays, chunk_blocks

    def _upload(self, arrays: dict[str, np.ndarray], chunks: np.ndarray, chunk_blocks: list[np.ndarray], n_decodes: int) -> Batch:
        """The iteration's arrays on the device, in one host-to-device copy."""
        parts = list(arrays.values()) + chunk_blocks
        flat = torch.from_numpy(np.concatenate(parts)).to(self.device, non_blocking=True)
        views = flat.split([len(part) for part in parts])
        named = dict(zip(arrays, views))
        firsts = np.cumsum(chunks[:, 2]) - chunks[:, 2]
        described = [(int(f), n, p + n, blocks) for f, (_, p, n), blocks in zip(firsts, chunks.tolist(), views[len(arrays):])]
        return Batch(named["token_ids"], named["positions"], named["write_blocks"], named["write_offsets"], described, n_decodes,
                     named["page_blocks"], named["page_rows"], named["page_tokens"], named["logit_rows"])

    def _finish_timing(self) -> float:
        self._end.record()
        self._end.synchronize()
        return self._start.elapsed_time(self._end) / 1e3

    def _replay_decode(self, arrays: dict[str, np.ndarray]) -> float:
        """A decode-only iteration: its inputs padded into the static buffers of its bucket's graph, one copy, one
        graph launch."""
        rows, pages = len(arrays["positions"]), len(arrays["page_blocks"])
        key = (batch_bucket(rows), page_bucket(pages))
        graph, _ = self._graphs.get(key) or self._capture(*key)
        host = self._padded(*key, arrays)
        self._start.record()
        self._inputs[: len(host)].copy_(host, non_blocking=True)
        graph.replay()
        return self._finish_timing()

    def _padded(self, rows: int, pages: int, arrays: dict[str, np.ndarray] | None = None) -> torch.Tensor:
        """The staging buffer filled for a graph of ``rows`` decodes and ``pages`` pages: the arrays, then padding
        (token 0 at position 0 written to the padding block; pages of the padding block with no valid token)."""
        pad = self.cache.padding_block
        layout = [("token_ids", rows, 0), ("positions", rows, 0), ("write_blocks", rows, pad), ("write_offsets", rows, 0),
                  ("page_blocks", pages, pad), ("page_rows", pages, 0), ("page_tokens", pages, 0)]
        host = self._staging[: 4 * rows + 3 * pages].numpy()
        start = 0
        for name, length, fill in layout:
            values = arrays[name] if arrays else np.empty(0, dtype=np.int64)
            host[start: start + len(values)] = values
            host[start + len(values): start + length] = fill
            start += length
        return self._staging[: len(host)]

    def _decode_batch(self, rows: int, pages: int) -> Batch:
        """A decode batch on the views of the static input buffer for ``rows`` decodes and ``pages`` pages,
        filled with padding."""
        views = self._inputs[: 4 * rows + 3 * pages].split([rows] * 4 + [pages] * 3)
        self._inputs[: 4 * rows + 3 * pages].copy_(self._padded(rows, pages))
        return Batch(*views[:4], [], rows, *views[4:], torch.arange(rows, device=self.device))

    def _capture(self, rows: int, pages: int) -> tuple[torch.cuda.CUDAGraph, Batch]:
        """Capture the decode step of a bucket on its views of the static input buffer."""
        batch = self._decode_batch(rows, pages)
        graph = self._graph_of(lambda: self._next_tokens[:rows].copy_(self.model.forward(batch, self.cache).argmax(-1)), self._pool)
        self._graphs[rows, pages] = graph, batch
        return graph, batch

    def _replay_once(self, batch: Batch) -> float:
        """An iteration with prefill chunks: its shapes are new nearly every time, so it is captured into a graph of
        its own and replayed once. As for the decode graphs, the host's kernel launches are not timed, only the
        device running the iteration's kernels back to back."""
        graph = self._graph_of(lambda: self.model.forward(batch, self.cache).argmax(-1), self._once_pool)
        self._start.record()
        graph.replay()
        duration_s = self._finish_timing()
        self._last_once = graph  # kept until the next one is captured, so the pool's memory stays reserved for it
        return duration_s

    def _graph_of(self, step: Callable[[], object], pool: tuple[int, int]) -> torch.cuda.CUDAGraph:
        """``step`` captured into a CUDA graph on the capture stream, its memory from ``pool``."""
        graph = torch.cuda.CUDAGraph()
        self._capture_stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self._capture_stream):
            graph.capture_begin(pool=pool)
            try:
                step()
            finally:
                graph.capture_end()
        torch.cuda.current_stream().wait_stream(self._capture_stream)
        return graph
