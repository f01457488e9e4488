"""How ``ppo-sample`` samples, per problem (kept free of torch so the solver registry can describe it)."""

#: Whether ``ppo-sample`` samples around the incumbent (True) or whole rollouts (False), per problem. Measured with
#: the same time per instance: jobshop ta41-ta50 at 10 s, 16.73% gap around the incumbent vs 18.79% whole
#: (``benchmarks/sampling_search.py``); memmap held-out traces at 1 s, 27.63% improvement around the incumbent (no
#: better than greedy: the placer's first decisions, the largest buffers, matter most) vs 29.49% whole
#: (``benchmarks/memmap_heldout.py``).
FOLLOW_INCUMBENT = {"jobshop": True, "socdag": True, "llmrouting": True, "memmap": False}
