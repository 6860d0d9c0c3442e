"""Local HTTP servers speaking the clouds' public pricing protocols, with fault injection.

    AwsPriceListServer   the AWS Price List bulk offer files (EC2, per region)
    GcpPricingServer     Cloud Billing Catalog SKUs + Compute Engine aggregated type lists
    AzureRetailServer    the Azure Retail Prices API with OData $filter and NextPageLink
    FaultPlan            throttling (429/503 + Retry-After), 5xx, garbage on chosen pages
    InstantClock         a Clock whose sleeps return at once and are recorded

Each server is an async context manager bound to 127.0.0.1 on a free port; `url`
is its base URL. EC2 itself is faked by moto's server (see skyd.testing.moto_ec2).
"""

from __future__ import annotations

from skyd.testing.pricing_servers.aws_price_list import AwsPriceListServer
from skyd.testing.pricing_servers.azure_retail import AzureRetailServer
from skyd.testing.pricing_servers.faults import Fault, FaultPlan
from skyd.testing.pricing_servers.gcp_pricing import GcpPricingServer
from skyd.testing.pricing_servers.instant_clock import InstantClock
from skyd.testing.pricing_servers.server import LoopbackServer, RecordedRequest

__all__ = [
    "AwsPriceListServer",
    "AzureRetailServer",
    "Fault",
    "FaultPlan",
    "GcpPricingServer",
    "InstantClock",
    "LoopbackServer",
    "RecordedRequest",
]
