"""AWS EC2 adapter (aioboto3); the SDK is imported only when a provider is first used."""

from skyd.providers.aws.config import AwsConfig
from skyd.providers.aws.provider import AwsProvider

__all__ = ["AwsConfig", "AwsProvider"]
