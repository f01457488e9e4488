"""LLM request workloads: the Azure 2023 conversation trace, the Mooncake conversation trace (with shared-prefix
block ids) and ShareGPT lengths with generated arrivals; rate scaling to a target load."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from schedgym.envs.errors import InstanceFormatError

#: Tokens per prefix block of the Mooncake trace's ``hash_ids``.
MOONCAKE_BLOCK_TOKENS = 512


@dataclass(frozen=True, eq=False)
class Workload:
    """Requests in arrival order.

    Attributes:
        name: workload name.
        arrival_s: float ``[n]``, non-decreasing arrival times (seconds from the first).
        prompt_tokens: int ``[n]``; output_tokens: int ``[n]`` (>= 1; the router does not see them).
        prefix_ids: per request the ids of its leading prompt blocks (equal id = same content), or None.
        prefix_block_tokens: tokens per prefix block.
        group: the class it is reported under (``azure-conv-high-4``).
        predicted_output_tokens: float ``[n]``, a prediction of each output length from what a router sees
            (:mod:`~schedgym.envs.llmrouting.length_predictor`), or None: predicted from the workload's name.
    """

    name: str
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    prefix_ids: tuple[tuple[int, ...], ...] | None = None
    prefix_block_tokens: int = MOONCAKE_BLOCK_TOKENS
    group: str = "all"
    predicted_output_tokens: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.arrival_s)
        if n == 0 or len(self.prompt_tokens) != n or len(self.output_tokens) != n:
            raise ValueError(f"workload {self.name!r}: need one arrival, prompt and output length per request")
        if (np.diff(self.arrival_s) < 0).any() or (np.asarray(self.prompt_tokens) < 1).any() or (np.asarray(self.output_tokens) < 1).any():
            raise ValueError(f"workload {self.name!r}: arrivals must be sorted and token counts >= 1")
        if self.prefix_ids is not None and len(self.prefix_ids) != n:
            raise ValueError(f"workload {self.name!r}: one prefix id list per request is needed")
        if self.predicted_output_tokens is not None and len(self.predicted_output_tokens) != n:
            raise ValueError(f"workload {self.name!r}: one predicted output length per request is needed")

    @property
    def n_requests(self) -> int:
        return len(self.arrival_s)

    def head(self, n: int) -> "Workload":
        """The first ``n`` requests."""
        return self.window(0, n)

    def window(self, start: int, n: int) -> "Workload":
        """Requests ``start`` to ``start + n - 1`` at their arrival times in this workload (:meth:`at_rate` starts
        them at 0).

        Raises:
            ValueError: if the workload has no request ``start``.
        """
        if not 0 <= start < self.n_requests:
            raise ValueError(f"workload {self.name!r} has {self.n_requests} requests; a window cannot start at request {start}")
        end = start + n
        return replace(
            self, arrival_s=self.arrival_s[start:end], prompt_tokens=self.prompt_tokens[start:end],
            output_tokens=self.output_tokens[start:end], prefix_ids=None if self.prefix_ids is None else self.prefix_ids[start:end],
            predicted_output_tokens=None if self.predicted_output_tokens is None else self.predicted_output_tokens[start:end],
        )

    def at_rate(self, rate_rps: float, name: str | None = None, group: str | None = None) -> "Workload":
        """The same requests with arrival times scaled so the mean rate is ``rate_rps`` requests/s."""
        span = float(self.arrival_s[-1] - self.arrival_s[0])
        current = (self.n_requests - 1) / span if span > 0 else rate_rps
        arrival = (self.arrival_s - self.arrival_s[0]) * (current / rate_rps)
        return replace(self, arrival_s=arrival, name=name or self.name, group=group or self.group)


def merge_workloads(parts: list[Workload], name: str) -> Workload:
    """One workload serving ``parts`` side by side: each part's arrivals scaled to span the same time (so each
    keeps its own burstiness and its share of the requests), merged in arrival order (ties: the earlier part
    first). Parts without prefix ids get none (an empty id list) where another part has them. Every part should
    carry its ``predicted_output_tokens`` (the merged name no longer says where a request comes from); the merge
    keeps them only if all do.

    Raises:
        ValueError: if the parts count prefix blocks in different token sizes.
    """
    if len({part.prefix_block_tokens for part in parts}) > 1:
        raise ValueError(f"workloads {[part.name for part in parts]} count prefix blocks in different token sizes; merge like with like")
    scaled = [part.at_rate(max(part.n_requests - 1, 1)) for part in parts]  # every part spans [0, 1] s
    arrival = np.concatenate([part.arrival_s for part in scaled])
    order = np.argsort(arrival, kind="stable")
    field = lambda values: np.concatenate(values)[order]  # noqa: E731
    prefix_ids = None
    if any(part.prefix_ids is not None for part in parts):
        flat = [ids for part in parts for ids in (part.prefix_ids or ((),) * part.n_requests)]
        prefix_ids = tuple(flat[i] for i in order)
    predicted = None
    if all(part.predicted_output_tokens is not None for part in parts):
        predicted = field([p.predicted_output_tokens for p in parts])
    return Workload(name, arrival[order], field([p.prompt_tokens for p in parts]), field([p.output_tokens for p in parts]),
                    prefix_ids, parts[0].prefix_block_tokens, predicted_output_tokens=predicted)


def _data_file(name: str) -> Path:
    return Path(str(resources.files("schedgym.envs.llmrouting") / "data" / name))


def load_azure_csv(path: str | os.PathLike | None = None) -> Workload:
    """Azure LLM inference trace CSV (``TIMESTAMP,ContextTokens,GeneratedTokens``); default: the shipped
    conversation trace."""
    path = Path(path) if path else _data_file("azure_llm_2023_conv.csv")
    fix = "the Azure trace CSV has the header TIMESTAMP,ContextTokens,GeneratedTokens and one request per line"
    times, prompts, outputs = [], [], []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"TIMESTAMP", "ContextTokens", "GeneratedTokens"} <= set(reader.fieldnames):
            raise InstanceFormatError(str(path), 1, f"header {reader.fieldnames} lacks TIMESTAMP/ContextTokens/GeneratedTokens", fix)
        for line, row in enumerate(reader, start=2):
            try:
                stamp = row["TIMESTAMP"][:26]
                times.append(datetime.fromisoformat(stamp).timestamp())
                prompts.append(max(1, int(row["ContextTokens"])))
                outputs.append(max(1, int(row["GeneratedTokens"])))
            except (ValueError, TypeError) as exc:
                raise InstanceFormatError(str(path), line, f"unreadable request ({exc})", fix) from None
    times_s = np.array(times)
    order = np.argsort(times_s, kind="stable")
    return Workload(path.stem, times_s[order] - times_s[order][0], np.array(prompts)[order], np.array(outputs)[order])


def load_mooncake_jsonl(path: str | os.PathLike | None = None) -> Workload:
    """Mooncake trace JSONL (``timestamp`` ms, ``input_length``, ``output_length``, ``hash_ids``); default: the
    shipped conversation trace."""
    path = Path(path) if path else _data_file("mooncake_conversation.jsonl")
    fix = "each line is a JSON object with timestamp (ms), input_length, output_length and hash_ids"
    times, prompts, outputs, prefixes = [], [], [], []
    with open(path) as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
                times.append(float(record["timestamp"]) / 1000.0)
                prompts.append(max(1, int(record["input_length"])))
                outputs.append(max(1, int(record["output_length"])))
                prefixes.append(tuple(int(h) for h in record.get("hash_ids", [])))
            except (ValueError, KeyError, TypeError) as exc:
                raise InstanceFormatError(str(path), line, f"unreadable request ({exc!r})", fix) from None
    if not times:
        raise InstanceFormatError(str(path), None, "no request in the file", fix)
    times_s = np.array(times)
    return Workload(path.stem, times_s - times_s[0], np.array(prompts), np.array(outputs), tuple(prefixes))


@lru_cache(maxsize=4)
def _sharegpt_rows(path: str) -> list[tuple[int, int]]:
    """(prompt, response) token lengths of a ShareGPT lengths CSV."""
    with open(path, newline="") as handle:
        return [(int(r["num_prefill_tokens"]), int(r["num_decode_tokens"])) for r in csv.DictReader(handle)]


def load_sharegpt_lengths(n: int, rate_rps: float, seed: int, *, arrivals: str = "poisson", cv: float = 2.0, path: str | os.PathLike | None = None) -> Workload:
    """``n`` ShareGPT (prompt, response) lengths drawn at random, arriving as a Poisson process or a gamma process of
    coefficient of variation ``cv`` (bursty for cv > 1) at ``rate_rps``."""
    rows = _sharegpt_rows(str(Path(path) if path else _data_file("sharegpt_lengths.csv")))
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(rows), size=n)
    if arrivals == "poisson":
        gaps = rng.exponential(1.0 / rate_rps, size=n)
    elif arrivals == "gamma":
        shape = 1.0 / cv**2
        gaps = rng.gamma(shape, 1.0 / (rate_rps * shape), size=n)
    else:
        raise ValueError(f"unknown arrival process {arrivals!r}; choose poisson or gamma")
    gaps[0] = 0.0
    prompts = np.array([max(1, rows[i][0]) for i in picks])
    outputs = np.array([max(1, rows[i][1]) for i in picks])
    return Workload(f"sharegpt-{arrivals}", np.cumsum(gaps), prompts, outputs)
