"""Latency profiles derived from a measured one by roofline scaling, for model / GPU shapes not measured yet.

A derived profile keeps the measured profile's grid (prefill chunks of T tokens; decodes of B sequences at context
C). At every grid point x::

    t_derived(x) = o * L_derived / L_measured + (t_measured(x) - o) * roof_derived(x) / roof_measured(x)

``roof(x) = max(bytes moved / HBM bandwidth, FLOPs / dense bf16 peak)`` of that iteration for the model on the GPU
(bytes: every weight once plus the KV cache read by the decodes or written by the prefill; FLOPs: two per weight
per token, the attention's ``4 x layers x heads x head_dim`` per token of context, the output head once per
prefill chunk), and ``o`` the measured profile's fixed cost per iteration: its fastest iteration minus that
iteration's roofline (launches and synchronisation, taken as a cost per layer, so it is scaled by the layer ratio
L). Decode and prefill have their own ``o``.

KV capacity as a serving engine sizes it (vLLM's rule): ``kv_blocks = floor((memory_utilization x GPU memory -
weights - reserve) / (block_tokens x KV bytes per token))``, the reserve covering the CUDA context, the activations
of one iteration and the CUDA graphs.

The derived files in ``envs/llmrouting/data`` are written by ``python -m schedgym.replay.llm_roofline OUT_DIR``
(a test checks the shipped ones are what it writes); each says ``"method": "derived"`` until it is re-measured
with ``schedgym calibrate --problem llmrouting --model llama-8b`` on such a GPU.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from schedgym.atomic import atomic_write_text
from schedgym.replay.llm_engine import LlamaConfig

GIB = 1 << 30
MEMORY_UTILIZATION = 0.9
RESERVE_BYTES = 2 * GIB
BLOCK_TOKENS = 16


@dataclass(frozen=True)
class GpuSpec:
    """What a roofline needs of a GPU (datasheet figures).

    Attributes:
        name: the device as ``torch.cuda.get_device_name`` would give it, plus the form factor.
        memory_bytes: device memory. hbm_bytes_per_s: memory bandwidth. bf16_flops_per_s: dense bf16 tensor peak.
    """

    name: str
    memory_bytes: int
    hbm_bytes_per_s: float
    bf16_flops_per_s: float


#: NVIDIA datasheets: H100 SXM5 80 GB (3.35 TB/s, 989 dense bf16 TFLOP/s), A100 SXM4 40 GB (1.555 TB/s, 312).
GPUS = {
    "h100-80gb": GpuSpec("NVIDIA H100 80GB HBM3 (SXM5)", 80 * GIB, 3.35e12, 989e12),
    "a100-40gb": GpuSpec("NVIDIA A100 40GB (SXM4)", 40 * GIB, 1.555e12, 312e12),
}
#: The measured profile every derived one starts from: the shipped Llama-3.2-1B profile, measured on an H100 SXM5.
MEASURED = ("profile_h100_llama1b.json", LlamaConfig.llama_1b(), GPUS["h100-80gb"])
#: The derived profiles shipped with llmrouting: file name -> (model shape, GPU).
DERIVED = {
    "profile_h100_llama8b.json": (LlamaConfig.llama_8b(), GPUS["h100-80gb"]),
    "profile_a100-40gb_llama8b.json": (LlamaConfig.llama_8b(), GPUS["a100-40gb"]),
}


def decode_roofline_s(config: LlamaConfig, gpu: GpuSpec, batch: int, context: int) -> float:
    """Roofline time of one decode iteration of ``batch`` sequences at ``context`` tokens each."""
    bytes_moved = config.weight_bytes + batch * context * config.kv_bytes_per_token
    flops = batch * (2 * config.n_params + 4 * config.layers * config.heads * config.head_dim * context)
    return max(bytes_moved / gpu.hbm_bytes_per_s, flops / gpu.bf16_flops_per_s)


def prefill_roofline_s(config: LlamaConfig, gpu: GpuSpec, tokens: int) -> float:
    """Roofline time of one prefill of ``tokens`` tokens of one sequence from position 0 (causal attention, the
    output head on its last token only)."""
    head = config.vocab * config.hidden
    bytes_moved = config.weight_bytes + tokens * config.kv_bytes_per_token
    flops = 2 * (config.n_params - head) * tokens + 2 * head + 2 * config.layers * config.heads * config.head_dim * tokens**2
    return max(bytes_moved / gpu.hbm_bytes_per_s, flops / gpu.bf16_flops_per_s)


def kv_blocks(config: LlamaConfig, memory_bytes: int, *, block_tokens: int = BLOCK_TOKENS,
              memory_utilization: float = MEMORY_UTILIZATION, reserve_bytes: int = RESERVE_BYTES) -> int:
    """KV blocks a replica of ``config`` holds on a device of ``memory_bytes``.

    Raises:
        ValueError: if the weights and the reserve leave no room for one block.
    """
    free_bytes = memory_utilization * memory_bytes - config.weight_bytes - reserve_bytes
    blocks = math.floor(free_bytes / (block_tokens * config.kv_bytes_per_token))
    if blocks < 1:
        raise ValueError(f"{config.describe()} does not fit in {memory_bytes / GIB:.0f} GiB with room for its KV cache; use a larger device")
    return blocks


def derive_profile(measured: dict, measured_config: LlamaConfig, measured_gpu: GpuSpec, config: LlamaConfig, gpu: GpuSpec,
                   *, source: str = "") -> dict:
    """The profile JSON (as :meth:`LatencyProfile.load` reads it) of ``config`` on ``gpu``, scaled from the
    ``measured`` profile of ``measured_config`` on ``measured_gpu`` (see the module docstring)."""
    prefill = {int(t): ms / 1e3 for t, ms in measured["prefill_ms"].items()}
    decode = {tuple(int(v) for v in key.split("x")): ms / 1e3 for key, ms in measured["decode_ms"].items()}
    layer_ratio = config.layers / measured_config.layers
    first_t = min(prefill)
    first_bc = min(decode, key=decode.get)
    prefill_fixed_s = max(prefill[first_t] - prefill_roofline_s(measured_config, measured_gpu, first_t), 0.0)
    decode_fixed_s = max(decode[first_bc] - decode_roofline_s(measured_config, measured_gpu, *first_bc), 0.0)

    def scaled_ms(time_s: float, fixed_s: float, roof_derived_s: float, roof_measured_s: float) -> float:
        return round(1e3 * (fixed_s * layer_ratio + (time_s - fixed_s) * roof_derived_s / roof_measured_s), 4)

    prefill_ms = {
        str(t): scaled_ms(s, prefill_fixed_s, prefill_roofline_s(config, gpu, t), prefill_roofline_s(measured_config, measured_gpu, t))
        for t, s in sorted(prefill.items())
    }
    decode_ms = {
        f"{b}x{c}": scaled_ms(s, decode_fixed_s, decode_roofline_s(config, gpu, b, c), decode_roofline_s(measured_config, measured_gpu, b, c))
        for (b, c), s in decode.items()
    }
    blocks = kv_blocks(config, gpu.memory_bytes)
    return {
        "model": config.describe(),
        "config": config.to_dict(),
        "gpu": gpu.name,
        "method": "derived",
        "derivation": (
            f"roofline scaling of {source or 'a measured profile'} ({measured_config.describe()} on {measured_gpu.name}): "
            "t = o L'/L + (t_measured - o) roof'/roof, roof = max(bytes / HBM bandwidth, FLOPs / dense bf16 peak), o the measured "
            f"fixed cost per iteration (decode {1e3 * decode_fixed_s:.4f} ms, prefill {1e3 * prefill_fixed_s:.4f} ms); "
            f"GPU {gpu.memory_bytes / GIB:.0f} GiB, {gpu.hbm_bytes_per_s / 1e12:g} TB/s, {gpu.bf16_flops_per_s / 1e12:g} TFLOP/s (datasheet); "
            "schedgym.replay.llm_roofline. Re-measure with `schedgym calibrate --problem llmrouting --model llama-8b` on this GPU"
        ),
        "kv_blocks": blocks,
        "block_tokens": BLOCK_TOKENS,
        "kv_bytes_per_token": config.kv_bytes_per_token,
        "weight_bytes": config.weight_bytes,
        "kv_sizing": f"floor(({MEMORY_UTILIZATION} x memory - weights - {RESERVE_BYTES // GIB} GiB reserve) / ({BLOCK_TOKENS} x kv_bytes_per_token))",
        "prefill_ms": prefill_ms,
        "decode_ms": decode_ms,
    }


def derived_profiles() -> dict[str, dict]:
    """Every shipped derived profile, file name -> JSON content, computed from the shipped measured profile."""
    name, measured_config, measured_gpu = MEASURED
    measured = json.loads((resources.files("schedgym.envs.llmrouting") / "data" / name).read_text())
    return {file: derive_profile(measured, measured_config, measured_gpu, config, gpu, source=name) for file, (config, gpu) in DERIVED.items()}


def write_derived_profiles(out_dir: str | Path) -> list[Path]:
    """Write :func:`derived_profiles` into ``out_dir`` (each file written whole, then renamed)."""
    paths = []
    for file, profile in derived_profiles().items():
        path = Path(out_dir) / file
        atomic_write_text(path, json.dumps(profile, indent=1) + "\n")
        paths.append(path)
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m schedgym.replay.llm_roofline OUT_DIR")
    for written in write_derived_profiles(sys.argv[1]):
        print(written)
