"""The iteration-time model of one replica, read from a measured profile JSON.

The profile gives ``prefill_ms[T]`` (one iteration prefilling T tokens of one sequence) and ``decode_ms["BxC"]``
(one decode iteration of B sequences of context C). An iteration mixing a prefill chunk of T tokens with B decodes of
mean context C takes ``decode(B, C) + prefill(T) - prefill(T0)`` (T0 the smallest measured chunk: the fixed cost of
an iteration is counted once); prefill alone takes ``prefill(T)``. ``decode`` is interpolated bilinearly in
(log B, log C) and ``prefill`` linearly in T, both extrapolated linearly past the last measured point.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

DEFAULT_PROFILE = "profile_h100_llama1b.json"


@dataclass(frozen=True, eq=False)
class LatencyProfile:
    """Measured iteration times (seconds) and where they come from."""

    prefill_tokens: np.ndarray  # [n_t] measured prefill chunk sizes, ascending
    prefill_s: np.ndarray  # [n_t]
    decode_batch: np.ndarray  # [n_b] ascending
    decode_context: np.ndarray  # [n_c] ascending
    decode_s: np.ndarray  # [n_b, n_c]
    description: dict

    def __post_init__(self) -> None:
        object.__setattr__(self, "_log_batch", np.log(self.decode_batch))
        object.__setattr__(self, "_log_context", np.log(self.decode_context))

    @classmethod
    def load(cls, path: str | Path | None = None) -> "LatencyProfile":
        """Read a profile JSON: a path, or the name of a shipped one (``profile_h100_llama8b.json``; default: the
        measured H100 Llama-1B profile).

        Raises:
            FileNotFoundError: if there is no such file. ValueError: if the file lacks ``prefill_ms`` or a full
                ``decode_ms`` grid, or its ``kv_blocks`` is not a positive integer.
        """
        shipped = Path(str(resources.files("schedgym.envs.llmrouting") / "data"))
        source = Path(path or DEFAULT_PROFILE)
        if not source.exists() and len(source.parts) == 1:
            source = shipped / source
        if not source.exists():
            raise FileNotFoundError(f"no latency profile at {source}; give a profile JSON path or one of {sorted(p.name for p in shipped.glob('profile_*.json'))}")
        data = json.loads(source.read_text())
        try:
            prefill = sorted((int(t), float(ms)) for t, ms in data["prefill_ms"].items())
            decode = {tuple(int(v) for v in key.split("x")): float(ms) for key, ms in data["decode_ms"].items()}
        except (KeyError, ValueError, AttributeError) as exc:
            raise ValueError(f"{source}: not a latency profile ({exc}); it needs prefill_ms {{T: ms}} and decode_ms {{'BxC': ms}}") from None
        batches = np.array(sorted({b for b, _ in decode}))
        contexts = np.array(sorted({c for _, c in decode}))
        missing = [(b, c) for b in batches for c in contexts if (b, c) not in decode]
        if missing or len(prefill) < 2 or len(batches) < 2 or len(contexts) < 2:
            raise ValueError(f"{source}: decode_ms must hold every batch x context pair (missing {missing[:3]}) and at least two points per axis")
        if "kv_blocks" in data and not (isinstance(data["kv_blocks"], int) and data["kv_blocks"] > 0):
            raise ValueError(f"{source}: kv_blocks must be a positive integer (the KV blocks a replica holds), got {data['kv_blocks']!r}")
        grid = np.array([[decode[b, c] for c in contexts] for b in batches]) / 1000.0
        description = {k: v for k, v in data.items() if k not in ("prefill_ms", "decode_ms", "prefill_eager_ms")}
        return cls(np.array([t for t, _ in prefill], dtype=float), np.array([ms for _, ms in prefill]) / 1000.0, batches.astype(float), contexts.astype(float), grid, description)

    @property
    def kv_blocks(self) -> int | None:
        """KV blocks a replica of this model holds on this GPU, where the profile records it."""
        return self.description.get("kv_blocks")

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of KV cache one token holds (all layers, keys and values): what a migration copies per token.

        Raises:
            ValueError: if the profile file does not record it.
        """
        if "kv_bytes_per_token" not in self.description:
            raise ValueError("this latency profile does not record kv_bytes_per_token (layers x KV heads x head dim x 2 x "
                             "bytes per value); add it to the profile JSON")
        return int(self.description["kv_bytes_per_token"])

    def prefill_time_s(self, tokens: float) -> float:
        return float(_interp_linear(tokens, self.prefill_tokens, self.prefill_s))

    def decode_time_s(self, batch: float, context: float) -> float:
        """:meth:`decode_times_s` at one context, in scalar arithmetic (the simulator calls it once per iteration)."""
        k, weight = self._batch_rows(batch)
        lc = math.log(max(context, 1.0))
        low, high = (_interp_linear(lc, self._log_context, self.decode_s[row]) for row in (k, k + 1))
        return max(low + weight * (high - low), 0.0)

    def decode_times_s(self, batch: float, contexts: np.ndarray) -> np.ndarray:
        """Decode iteration times ``[len(contexts)]`` of ``batch`` sequences at each mean context."""
        k, weight = self._batch_rows(batch)
        lc = np.log(np.maximum(contexts, 1.0))
        low, high = (_interp_linear_array(lc, self._log_context, self.decode_s[row]) for row in (k, k + 1))
        return np.maximum(low + weight * (high - low), 0.0)

    def _batch_rows(self, batch: float) -> tuple[int, float]:
        """The measured batch row below ``batch`` (the last but one past the grid, the first before it) and the
        weight of the row above, linear in log B."""
        lb = math.log(max(batch, 1.0))  # scalar arithmetic: the simulator looks rows up once per iteration
        xb = self._log_batch
        k = min(max(bisect.bisect_left(xb, lb) - 1, 0), len(xb) - 2)
        return k, (lb - xb[k]) / (xb[k + 1] - xb[k])

    def iteration_time_s(self, prefill_tokens: int, decode_batch: int, mean_context: float) -> float:
        """Duration of one iteration with ``prefill_tokens`` chunk tokens and ``decode_batch`` decodes."""
        if decode_batch == 0:
            return self.prefill_time_s(prefill_tokens) if prefill_tokens else 0.0
        time = self.decode_time_s(decode_batch, mean_context)
        if prefill_tokens:
            time += self.prefill_time_s(prefill_tokens) - self.prefill_s[0]
        return time


def _interp_linear_array(x: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """:func:`_interp_linear` over an array of points."""
    inside = np.interp(x, xs, ys)
    below = ys[0] + (ys[1] - ys[0]) / (xs[1] - xs[0]) * (x - xs[0])
    above = ys[-1] + (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]) * (x - xs[-1])
    return np.where(x < xs[0], np.maximum(below, 0.0), np.where(x > xs[-1], above, inside))


def _interp_linear(x: float, xs: np.ndarray, ys: np.ndarray) -> float:
    """Piecewise-linear interpolation, extended linearly beyond both ends (never below 0)."""
    if x <= xs[0]:
        slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
        return max(0.0, ys[0] + slope * (x - xs[0]))
    if x >= xs[-1]:
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        return ys[-1] + slope * (x - xs[-1])
    return float(np.interp(x, xs, ys))
