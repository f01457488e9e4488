"""A predictor of a request's output length from what a router sees when it arrives.

The traces give, per request, its prompt length and the service it comes from (the trace: Azure conversation,
Mooncake conversation, ShareGPT); no text. The predictor is the mean output length of the training requests of the
same source whose prompt length falls in the same power-of-two bin (bins with fewer than ``MIN_BIN`` requests use the
source's mean; an unknown source uses every source's requests). Prompt length alone says little: its correlation
with the output length is 0.05-0.09 on the three traces (log-log), so most of what the predictor knows is which
service a request belongs to.

Training requests are never those of a suite or of a quality benchmark block: Azure requests 10,000 onwards (the
suites and benchmarks use the first 6,000), Mooncake requests 6,000 onwards (they use the first 3,000), and ShareGPT
lengths drawn with seeds 1,000-1,009 (the ShareGPT suites draw with seeds 0-2 from the same pool of conversations,
so the two samples may share conversations).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from schedgym.envs.llmrouting.workload import Workload, load_azure_csv, load_mooncake_jsonl, load_sharegpt_lengths

SOURCES = ("azure", "mooncake", "sharegpt")
MIN_BIN = 20
N_BINS = 20  # prompt bins [2^k, 2^(k+1)) for k < 19, and the last one beyond


def source_of(name: str) -> str | None:
    """The source a workload's requests come from, read from its name (``azure-conv-kv-high-4``: azure);
    ``generated-*`` training workloads are ShareGPT lengths; None if the name says nothing."""
    if name.startswith("generated"):
        return "sharegpt"
    return next((source for source in SOURCES if source in name), None)


def _bins(prompt_tokens: np.ndarray) -> np.ndarray:
    return np.minimum(np.floor(np.log2(np.maximum(prompt_tokens, 1))).astype(np.int64), N_BINS - 1)


@dataclass(frozen=True, eq=False)
class OutputLengthPredictor:
    """Mean output tokens per (source, prompt bin).

    Attributes:
        table: source -> float ``[N_BINS]``, the predicted output tokens of a request of that source per prompt bin
            (key None: every source pooled).
    """

    table: dict[str | None, np.ndarray]

    @classmethod
    def fit(cls, samples: dict[str, Workload]) -> "OutputLengthPredictor":
        """Fit on training workloads, one per source."""
        table = {}
        pooled = {None: [w for w in samples.values()]}
        for source, workloads in {**{s: [w] for s, w in samples.items()}, **pooled}.items():
            prompts = np.concatenate([w.prompt_tokens for w in workloads])
            outputs = np.concatenate([w.output_tokens for w in workloads]).astype(float)
            bins = _bins(prompts)
            counts = np.bincount(bins, minlength=N_BINS)
            sums = np.bincount(bins, weights=outputs, minlength=N_BINS)
            table[source] = np.where(counts >= MIN_BIN, sums / np.maximum(counts, 1), outputs.mean())
        return cls(table)

    def predict(self, prompt_tokens: np.ndarray, source: str | None) -> np.ndarray:
        """Predicted output tokens, float ``[n]``, of requests of ``prompt_tokens`` from ``source``."""
        return self.table.get(source, self.table[None])[_bins(np.asarray(prompt_tokens))]

    def annotate(self, workload: Workload) -> Workload:
        """``workload`` with ``predicted_output_tokens`` set (its source read from its name)."""
        return replace(workload, predicted_output_tokens=self.predict(workload.prompt_tokens, source_of(workload.name)))


@lru_cache(maxsize=1)
def default_predictor() -> OutputLengthPredictor:
    """The predictor fitted on the training blocks of the shipped traces (see the module docstring)."""
    azure, mooncake = load_azure_csv(), load_mooncake_jsonl()
    sharegpt = [load_sharegpt_lengths(2000, rate_rps=1.0, seed=1000 + k) for k in range(10)]
    sharegpt_all = Workload("sharegpt-train", np.concatenate([w.arrival_s + 1e4 * k for k, w in enumerate(sharegpt)]),
                            np.concatenate([w.prompt_tokens for w in sharegpt]), np.concatenate([w.output_tokens for w in sharegpt]))
    return OutputLengthPredictor.fit({
        "azure": azure.window(10_000, azure.n_requests - 10_000),
        "mooncake": mooncake.window(6_000, mooncake.n_requests - 6_000),
        "sharegpt": sharegpt_all,
    })


def predicted_output_tokens(workload: Workload) -> np.ndarray:
    """The workload's predicted output tokens ``[n]``: its own annotation, or the default predictor's."""
    if workload.predicted_output_tokens is not None:
        return workload.predicted_output_tokens
    return default_predictor().predict(workload.prompt_tokens, source_of(workload.name))
