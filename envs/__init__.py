"""schedgym.envs: per problem the instance model, loaders, solution + validator, simulator and Gymnasium env.

Importing this package registers the Gymnasium env ids (``schedgym/JobShop-v0``).
"""

import gymnasium

from schedgym.envs.errors import InstanceFormatError

ENV_IDS: dict[str, str] = {"jobshop": "schedgym/JobShop-v0"}

if "schedgym/JobShop-v0" not in gymnasium.registry:
    gymnasium.register("schedgym/JobShop-v0", entry_point="schedgym.envs.jobshop.env:JobShopEnv")

__all__ = ["ENV_IDS", "InstanceFormatError"]
