"""Job-shop baselines: priority dispatching rules and CP-SAT."""

from schedgym.baselines.jobshop.cpsat import CpSatJobShop
from schedgym.baselines.jobshop.rules import RULE_SCORES, DispatchingRule

__all__ = ["CpSatJobShop", "DispatchingRule", "RULE_SCORES"]
