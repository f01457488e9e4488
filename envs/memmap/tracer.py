"""Memory-mapping instances traced from PyTorch models (torch.fx; no weights are made or downloaded).

``torch.fx.symbolic_trace`` gives the op graph and ``ShapeProp`` the shape of every tensor for one example input;
the model and the input live on PyTorch's ``meta`` device, so only shapes are computed (a 10,000-buffer program
traces in seconds and allocates no tensor memory).
Every call (module, function or method) is an op, in graph order. Buffers:

* each op's output, live from the op that makes it to the last op that reads it (both included);
* each parameter, live over the ops that use it (fetched just in time: the program's weights are not pinned).

An op reads every input buffer in full and writes its output in full; its compute time is its FLOPs (2 per
multiply-add of a linear / conv / matmul, one per output element otherwise) divided by the device's peak rate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from schedgym.envs.memmap.instance import MemMapInstance, live_bytes

#: Device model: peak compute and the two memories (an accelerator with on-chip SRAM in front of HBM).
PEAK_FLOPS = 2.0e14
FAST_BW_BYTES_PER_S = 8.0e12
SLOW_BW_BYTES_PER_S = 1.0e12
ALIGNMENT_BYTES = 64


class Mlp(nn.Module):
    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))

    def forward(self, x):
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        y = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(x + self.norm2(self.conv2(y)))


class SmallResNet(nn.Module):
    def __init__(self, channels: int, blocks: int, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.head = nn.Linear(channels, classes)

    def forward(self, x):
        x = self.blocks(torch.relu(self.stem(x)))
        return self.head(x.mean(dim=(2, 3)))


class TransformerBlock(nn.Module):
    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.up = nn.Linear(d_model, 4 * d_model)
        self.down = nn.Linear(4 * d_model, d_model)

    def forward(self, x):
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        scores = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * (q.shape[-1] ** -0.5), dim=-1)
        x = x + self.proj(torch.matmul(scores, v))
        return x + self.down(torch.nn.functional.gelu(self.up(self.norm2(x))))


class HeadSplitTransformerBlock(TransformerBlock):
    """A transformer block whose attention runs head by head (each head's slices, scores, softmax and weighted sum
    are ops of their own, as in a program lowered per head), so the program is wider: about 8 more buffers per head."""

    def forward(self, x):
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        width = q.shape[-1] // self.heads
        outputs = []
        for h in range(self.heads):
            part = slice(h * width, (h + 1) * width)
            q_h, k_h, v_h = q[..., part], k[..., part], v[..., part]
            scores = torch.softmax(torch.matmul(q_h, k_h.transpose(-2, -1)) * (width**-0.5), dim=-1)
            outputs.append(torch.matmul(scores, v_h))
        x = x + self.proj(torch.cat(outputs, dim=-1))
        return x + self.down(torch.nn.functional.gelu(self.up(self.norm2(x))))


@dataclass(frozen=True)
class ModelSpec:
    """One traced model: ``family`` and its size parameters (mlp: layer widths; resnet: channels, residual blocks,
    image side; transformer and transformer-heads (attention head by head): model width, heads, sequence length,
    blocks) and the batch size."""

    family: str
    size: tuple[int, ...]
    batch: int

    @property
    def name(self) -> str:
        return f"{self.family}-{'x'.join(map(str, self.size))}-b{self.batch}"

    def build(self) -> tuple[nn.Module, torch.Tensor]:
        """The model and an example input, both on the ``meta`` device (shapes only)."""
        with torch.device("meta"):
            if self.family == "mlp":
                return Mlp(self.size), torch.zeros(self.batch, self.size[0])
            if self.family == "resnet":
                channels, blocks, image = self.size
                return SmallResNet(channels, blocks), torch.zeros(self.batch, 3, image, image)
            if self.family in ("transformer", "transformer-heads"):
                d_model, heads, seq, layers = self.size
                block = TransformerBlock if self.family == "transformer" else HeadSplitTransformerBlock
                return nn.Sequential(*(block(d_model, heads) for _ in range(layers))), torch.zeros(self.batch, seq, d_model)
        raise ValueError(f"unknown model family {self.family!r}; choose mlp, resnet, transformer or transformer-heads")


def _bytes(meta) -> int:
    return int(np.prod(meta.shape)) * meta.dtype.itemsize if meta is not None else 0


def _flops(node: fx.Node, module: nn.Module | None, out_meta, inputs: list) -> float:
    numel = float(np.prod(out_meta.shape)) if out_meta is not None else 0.0
    if isinstance(module, nn.Linear):
        return 2.0 * numel * module.in_features
    if isinstance(module, nn.Conv2d):
        kernel = module.kernel_size[0] * module.kernel_size[1]
        return 2.0 * numel * module.in_channels * kernel / module.groups
    if node.target in (torch.matmul, torch.bmm) and inputs:
        return 2.0 * numel * float(inputs[0].shape[-1])
    return numel


@functools.lru_cache(maxsize=64)
def trace_model(spec: ModelSpec, capacity_fraction: float) -> MemMapInstance:
    """Trace ``spec`` into a mapping instance whose fast memory holds ``capacity_fraction`` of the peak live bytes
    (cached, as the trace itself: instances are immutable, and a large trace takes seconds)."""
    size_bytes, start, end, compute_s, access = _trace_program(spec)
    peak = int(live_bytes(start, end, size_bytes).max())
    capacity = max(ALIGNMENT_BYTES, int(peak * capacity_fraction) // ALIGNMENT_BYTES * ALIGNMENT_BYTES)
    return MemMapInstance(
        name=f"{spec.name}-c{int(round(capacity_fraction * 100))}", size_bytes=size_bytes, live_start=start, live_end=end,
        capacity_bytes=capacity, alignment_bytes=ALIGNMENT_BYTES, op_compute_s=compute_s,
        access_op=access[:, 0].astype(np.int64), access_buffer=access[:, 1].astype(np.int64), access_bytes=access[:, 2],
        fast_bw_bytes_per_s=FAST_BW_BYTES_PER_S, slow_bw_bytes_per_s=SLOW_BW_BYTES_PER_S, group=f"{spec.family}-c{int(round(capacity_fraction * 100))}",
        reference=f"torch.fx trace of {spec.name} (shapes only)",
    )


@functools.lru_cache(maxsize=16)
def _trace_program(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(size_bytes, live_start, live_end ``[n_buffers]``, op compute s ``[n_ops]``, accesses ``[n_accesses, 3]``
    as op, buffer, bytes) of ``spec``'s traced program."""
    model, example = spec.build()
    model.eval()
    graph_module = fx.symbolic_trace(model)
    ShapeProp(graph_module).propagate(example)
    modules = dict(graph_module.named_modules())
    parameters = dict(graph_module.named_parameters())
    nodes = [n for n in graph_module.graph.nodes if n.op in ("call_module", "call_function", "call_method")]
    op_of = {node: k for k, node in enumerate(nodes)}
    buffers: list[tuple[int, int, int]] = []  # (size, first op, last op)
    accesses: list[tuple[int, int, float]] = []  # (op, buffer, bytes)
    compute_s = []
    produced: dict[fx.Node, int] = {}
    for node in nodes:
        meta = node.meta.get("tensor_meta")
        size = _bytes(meta) if hasattr(meta, "shape") else 0
        if size:
            produced[node] = len(buffers)
            buffers.append((size, op_of[node], op_of[node]))
            accesses.append((op_of[node], produced[node], float(size)))
    for node in nodes:
        op = op_of[node]
        module = modules.get(node.target) if node.op == "call_module" else None
        inputs = [a.meta["tensor_meta"] for a in node.all_input_nodes if hasattr(a.meta.get("tensor_meta"), "shape")]
        compute_s.append(_flops(node, module, node.meta.get("tensor_meta") if hasattr(node.meta.get("tensor_meta"), "shape") else None, inputs) / PEAK_FLOPS)
        for source in node.all_input_nodes:
            if source in produced:
                b = produced[source]
                size, first, last = buffers[b]
                buffers[b] = (size, first, max(last, op))
                accesses.append((op, b, float(size)))
        if module is not None:
            for pname, param in module.named_parameters(recurse=False):
                if f"{node.target}.{pname}" in parameters:
                    size = param.numel() * param.element_size()
                    buffers.append((size, op, op))
                    accesses.append((op, len(buffers) - 1, float(size)))
    size_bytes = np.array([s for s, _, _ in buffers], dtype=np.int64)
    start = np.array([f for _, f, _ in buffers], dtype=np.int64)
    end = np.array([last + 1 for _, _, last in buffers], dtype=np.int64)
    return size_bytes, start, end, np.array(compute_s), np.array(accesses, dtype=float)


#: The models of the ``traced-models`` suite: two sizes per family.
SUITE_MODELS = (
    ModelSpec("mlp", (1024, 2048, 2048, 2048, 1024, 512), 32),
    ModelSpec("mlp", (512, 1024, 1024, 1024, 1024, 1024, 1024, 256), 128),
    ModelSpec("resnet", (32, 4, 32), 8),
    ModelSpec("resnet", (64, 3, 16), 16),
    ModelSpec("transformer", (256, 4, 128, 2), 4),
    ModelSpec("transformer", (512, 8, 64, 2), 2),
)
#: Fast-memory capacities of the suite, as fractions of the peak live bytes.
CAPACITY_FRACTIONS = (0.25, 0.5)
#: The models of the ``traced-large`` suite (about 1,000, 1,400, 3,700 and 9,800 buffers), at the same fractions.
LARGE_MODELS = (
    ModelSpec("resnet", (64, 68, 32), 8),
    ModelSpec("transformer", (1024, 16, 512, 48), 1),
    ModelSpec("transformer-heads", (1024, 16, 512, 24), 1),
    ModelSpec("transformer-heads", (1024, 16, 512, 64), 1),
)


@dataclass(frozen=True)
class TraceGenerator:
    """Draws training instances: a model of one of ``families`` with random sizes and batch, traced with fast
    memory at a fraction of its peak live bytes drawn from ``capacity_fraction``. Transformers are left out by
    default, so they stay a held-out family. ``layers`` (low, high), if given, draws the residual blocks and
    transformer blocks from ``[low, high)`` instead (:meth:`large`: programs of about 500-10,000 buffers)."""

    families: tuple[str, ...] = ("mlp", "resnet")
    capacity_fraction: tuple[float, float] = (0.2, 0.6)
    max_buffers: int = 96  # padding of the observation (the largest draw has about 70 buffers)
    max_edges: int = 1024
    layers: tuple[int, int] | None = None

    @classmethod
    def large(cls) -> TraceGenerator:
        """Deep ResNets and transformers (32-64 blocks; attention head by head too): about 500-10,000 buffers."""
        return cls(families=("resnet", "transformer", "transformer-heads"), layers=(32, 65), max_buffers=10_500, max_edges=300_000)

    def __call__(self, rng: np.random.Generator) -> MemMapInstance:
        family = str(rng.choice(self.families))
        if family == "mlp":
            widths = tuple(int(w) for w in rng.choice([256, 512, 1024, 2048], size=int(rng.integers(3, 9))))
            spec = ModelSpec("mlp", widths, int(rng.choice([16, 32, 64, 128])))
        elif family == "resnet":
            channels, blocks = int(rng.choice([16, 32, 64])), int(rng.integers(*(self.layers or (1, 5))))
            spec = ModelSpec("resnet", (channels, blocks, int(rng.choice([8, 16, 32]))), int(rng.choice([2, 4, 8, 16])))
        else:
            heads = 4 if self.layers is None else int(rng.choice([4, 8, 16]))
            width, seq = int(rng.choice([128, 256, 512])), int(rng.choice([32, 64, 128]))
            spec = ModelSpec(family, (width * (heads // 4), heads, seq, int(rng.integers(*(self.layers or (1, 3))))), int(rng.choice([1, 2, 4])))
        return trace_model(spec, float(rng.uniform(*self.capacity_fraction)))
