"""Azure VM adapter (azure-mgmt-compute async client); the SDK is imported on first use."""

from skyd.providers.azure.config import AzureConfig
from skyd.providers.azure.provider import AzureProvider

__all__ = ["AzureConfig", "AzureProvider"]
