"""llmrouting baselines: routing heuristics, and Llumnix's dispatch with migration."""

from schedgym.baselines.llmrouting.migration import LlumnixMigrate
from schedgym.baselines.llmrouting.routers import ROUTERS, Router, outstanding

__all__ = ["LlumnixMigrate", "ROUTERS", "Router", "outstanding"]
