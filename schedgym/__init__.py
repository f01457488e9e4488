"""schedgym: Gymnasium environments, GNN-PPO agents and classical baselines for scheduling problems."""

__version__ = "0.1.0"
