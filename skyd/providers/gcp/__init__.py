"""Google Compute Engine adapter (google-cloud-compute over REST), SDK loaded on first use."""

from skyd.providers.gcp.config import GcpConfig
from skyd.providers.gcp.provider import GcpProvider

__all__ = ["GcpConfig", "GcpProvider"]
