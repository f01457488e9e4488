"""schedgym: Gymnasium environments, GNN-PPO agents and classical baselines for scheduling problems.

Importing ``schedgym`` registers every env id with Gymnasium (``schedgym/JobShop-v0``, ``schedgym/SocDag-v0``,
``schedgym/LlmRouting-v0``, ``schedgym/MemoryMapping-v0``), so ``gym.make("schedgym/JobShop-v0")`` works after a
plain ``import schedgym``. The envs themselves load on first ``gym.make``.
"""

from schedgym.envs import ENV_IDS  # noqa: F401  (importing schedgym.envs registers the env ids)

__version__ = "0.1.0"
