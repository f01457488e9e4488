"""llmrouting baselines: routing heuristics."""

from schedgym.baselines.llmrouting.routers import ROUTERS, Router, outstanding

__all__ = ["ROUTERS", "Router", "outstanding"]
