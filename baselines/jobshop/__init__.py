"""Job-shop baselines: priority dispatching rules, tabu search and CP-SAT."""

from schedgym.baselines.jobshop.cpsat import CpSatJobShop
from schedgym.baselines.jobshop.rules import RULE_SCORES, DispatchingRule
from schedgym.baselines.jobshop.tabu import TabuSearchSolver, tabu_search

__all__ = ["CpSatJobShop", "DispatchingRule", "RULE_SCORES", "TabuSearchSolver", "tabu_search"]
