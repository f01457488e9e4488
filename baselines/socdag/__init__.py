"""socdag baselines: online rules (HEFT-online, EFT, ETF, MET, random), static HEFT and CPoP, CP-SAT."""

from schedgym.baselines.socdag.cpsat import CpSatSocDag
from schedgym.baselines.socdag.heft import StaticListScheduler, cpop_plan, heft_plan
from schedgym.baselines.socdag.rules import ONLINE_RULES, OnlineRule

__all__ = ["CpSatSocDag", "ONLINE_RULES", "OnlineRule", "StaticListScheduler", "cpop_plan", "heft_plan"]
