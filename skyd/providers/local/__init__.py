"""The `local` provider: this host as one machine with a fixed number of job slots."""

from skyd.providers.local.provider import LocalProvider

__all__ = ["LocalProvider"]
