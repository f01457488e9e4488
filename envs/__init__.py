"""schedgym.envs: per problem the instance model, loaders, solution + validator, simulator and Gymnasium env."""

from schedgym.envs.errors import InstanceFormatError

__all__ = ["InstanceFormatError"]
