"""Where the catalog fetchers send their requests, and with which credentials."""

from __future__ import annotations

from dataclasses import dataclass

AWS_PRICE_LIST_URL = "https://pricing.us-east-1.amazonaws.com"
GCP_BILLING_URL = "https://cloudbilling.googleapis.com"
GCP_COMPUTE_URL = "https://compute.googleapis.com"
AZURE_RETAIL_PRICES_URL = "https://prices.azure.com/api/retail/prices"

# The Cloud Billing Catalog service id of Compute Engine.
GCP_COMPUTE_SERVICE_ID = "6F81-5844-456A"


@dataclass(frozen=True)
class FetchEndpoints:
    """Base URLs of the public pricing APIs (real ones by default; tests point them at fakes).

    AWS credentials are not here: aioboto3 reads them the usual way (environment,
    ~/.aws, instance role). GCP needs an API key for the Billing Catalog and an
    OAuth access token plus a project for Compute Engine's machine and accelerator
    type lists; when the token is None, Application Default Credentials are used.
    """

    aws_ec2_url: str | None = None
    aws_price_list_url: str = AWS_PRICE_LIST_URL
    # None: every region DescribeRegions reports for the account.
    aws_regions: tuple[str, ...] | None = None
    gcp_billing_url: str = GCP_BILLING_URL
    gcp_compute_url: str = GCP_COMPUTE_URL
    gcp_api_key: str | None = None
    gcp_access_token: str | None = None
    gcp_project: str | None = None
    azure_prices_url: str = AZURE_RETAIL_PRICES_URL
