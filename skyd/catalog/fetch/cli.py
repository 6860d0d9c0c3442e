"""`skyd catalog fetch aws|gcp|azure [--out DIR]`: argument parsing for the catalog fetchers."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from skyd.catalog.fetch.build import FETCHABLE_CLOUDS, fetch_catalog
from skyd.catalog.fetch.endpoints import (
    AWS_PRICE_LIST_URL,
    AZURE_RETAIL_PRICES_URL,
    GCP_BILLING_URL,
    GCP_COMPUTE_URL,
    FetchEndpoints,
)
from skyd.errors import CatalogError

# Secrets come from the environment, never argv (which any local user can read in ps).
GCP_API_KEY_ENV = "SKYD_GCP_API_KEY"
GCP_ACCESS_TOKEN_ENV = "SKYD_GCP_ACCESS_TOKEN"
GCP_PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skyd catalog fetch",
        description=(
            "Rebuild a cloud's catalog CSV from its public pricing APIs. The existing file "
            "is replaced only when the whole fetch succeeds and the result validates."
        ),
        epilog=(
            f"AWS uses the usual AWS credentials. GCP reads an API key from ${GCP_API_KEY_ENV}, "
            f"an OAuth token from ${GCP_ACCESS_TOKEN_ENV} (else Application Default "
            f"Credentials) and the project from --gcp-project or ${GCP_PROJECT_ENV}. "
            "Azure needs nothing."
        ),
    )
    parser.add_argument("cloud", choices=FETCHABLE_CLOUDS, help="which cloud to fetch")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory to write <cloud>.csv into (default: the catalog directory skyd uses)",
    )
    parser.add_argument("--ec2-endpoint", default=None, metavar="URL", help="EC2 endpoint URL")
    parser.add_argument(
        "--aws-region",
        action="append",
        dest="aws_regions",
        metavar="REGION",
        help="fetch only this AWS region (repeatable; default: every enabled region)",
    )
    parser.add_argument("--aws-price-list-url", default=AWS_PRICE_LIST_URL, metavar="URL")
    parser.add_argument("--gcp-project", default=None, metavar="PROJECT")
    parser.add_argument("--gcp-billing-url", default=GCP_BILLING_URL, metavar="URL")
    parser.add_argument("--gcp-compute-url", default=GCP_COMPUTE_URL, metavar="URL")
    parser.add_argument("--azure-prices-url", default=AZURE_RETAIL_PRICES_URL, metavar="URL")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request retry")
    return parser


def endpoints_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> FetchEndpoints:
    return FetchEndpoints(
        aws_ec2_url=args.ec2_endpoint,
        aws_price_list_url=args.aws_price_list_url,
        aws_regions=tuple(args.aws_regions) if args.aws_regions else None,
        gcp_billing_url=args.gcp_billing_url,
        gcp_compute_url=args.gcp_compute_url,
        gcp_api_key=environ.get(GCP_API_KEY_ENV) or None,
        gcp_access_token=environ.get(GCP_ACCESS_TOKEN_ENV) or None,
        gcp_project=args.gcp_project or environ.get(GCP_PROJECT_ENV) or None,
        azure_prices_url=args.azure_prices_url,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the fetch; 0 on success, 1 when it failed (the old catalog is kept), 2 on bad usage."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        out_dir = args.out if args.out is not None else _default_out_dir()
        path = asyncio.run(
            fetch_catalog(args.cloud, out_dir, endpoints_from_args(args, os.environ))
        )
    except CatalogError as exc:
        print(f"skyd catalog fetch {args.cloud}: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _default_out_dir() -> Path:
    from skyd.catalog.locate import default_catalog_dir

    return default_catalog_dir()
