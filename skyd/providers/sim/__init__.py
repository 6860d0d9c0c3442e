"""The `sim` provider: a cloud whose spot capacity and prices replay a recorded trace."""

from skyd.providers.sim.provider import SIM_CLOUD, SimProvider

__all__ = ["SIM_CLOUD", "SimProvider"]
