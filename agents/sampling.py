"""How ``ppo-sample`` searches, per problem (kept free of torch so the solver registry can describe it)."""

#: The searches ``ppo-sample`` can run after its greedy rollout (see :meth:`schedgym.agents.solvers.PpoSolver.solve`).
SEARCHES = {
    "tail": "rounds of --samples K (default 8) rollouts as one batch, each replaying the first half or more of the best "
    "rollout so far and sampling the rest",
    "whole": "rounds of --samples K (default 8) rollouts sampled whole, as one batch",
    "deviations": "a steepest descent (greedy rollouts, 32 per batch, each taking the network's second-ranked action at "
    "one or two consecutive decisions of the current rollout and then going on greedily or, on memmap, keeping its "
    "later decisions where they still fit; the best of all such moves becomes the current rollout while it improves, "
    "then rollouts as good as it but different), then rounds of --samples K (default 8) rollouts sampled whole",
}

#: The search ``ppo-sample`` runs, per problem. Measured with the same time per instance: jobshop ta41-ta50 at 10 s,
#: 16.73% gap with ``tail`` vs 18.79% ``whole``, and in another run 18.18% ``tail`` vs 19.21% ``deviations``
#: (``benchmarks/sampling_search.py``, ``results/sampling_search_deviations.json``); memmap held-out traces at 1 s,
#: 27.63% improvement with ``tail`` (no better than greedy: the placer's first decisions matter most), 29.43%
#: ``whole``, 29.98% ``deviations`` (30.04% once it walks plateaus too); at 10 s, 29.79% ``whole`` and 30.04% ``deviations``
#: (30.08% with plateaus); as a steepest descent with kept tails (retrained ResNet and MLP placers) 29.79% at 1 s and
#: 30.15% at 10 s, CP-SAT's optimum (``benchmarks/memmap_heldout.py``).
SEARCH = {"jobshop": "tail", "jobshop-blocking": "tail", "socdag": "tail", "llmrouting": "tail", "memmap": "deviations"}
