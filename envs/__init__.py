"""schedgym.envs: per problem the instance model, loaders, solution + validator, simulator and Gymnasium env.

Importing this package registers the Gymnasium env ids (``schedgym/JobShop-v0``, ``schedgym/JobShopImprove-v0``,
``schedgym/BlockingJobShop-v0``, ``schedgym/SocDag-v0``, ``schedgym/LlmRouting-v0``, ``schedgym/MemoryMapping-v0``).
"""

import gymnasium

from schedgym.envs.errors import InstanceFormatError

ENV_IDS: dict[str, str] = {
    "jobshop": "schedgym/JobShop-v0",
    "jobshop-improve": "schedgym/JobShopImprove-v0",
    "jobshop-blocking": "schedgym/BlockingJobShop-v0",
    "socdag": "schedgym/SocDag-v0",
    "llmrouting": "schedgym/LlmRouting-v0",
    "memmap": "schedgym/MemoryMapping-v0",
}
_ENTRY_POINTS = {
    "jobshop": "schedgym.envs.jobshop.env:JobShopEnv",
    "jobshop-improve": "schedgym.envs.jobshop.improve:JobShopImproveEnv",
    "jobshop-blocking": "schedgym.envs.jobshop.blocking_env:BlockingJobShopEnv",
    "socdag": "schedgym.envs.socdag.env:SocDagEnv",
    "llmrouting": "schedgym.envs.llmrouting.env:LlmRoutingEnv",
    "memmap": "schedgym.envs.memmap.env:MemoryMappingEnv",
}

for _problem, _env_id in ENV_IDS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(_env_id, entry_point=_ENTRY_POINTS[_problem])

__all__ = ["ENV_IDS", "InstanceFormatError"]
