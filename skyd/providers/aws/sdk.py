"""The aioboto3 session skyd's AWS adapter uses: EC2's models preloaded, fast timestamps."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast


def sdk_session(profile: str | None) -> Any:
    import aioboto3
    from aiobotocore.session import get_session  # type: ignore[import-untyped]

    core = get_session()
    # dateutil parses every timestamp botocore meets; on a 1,000-instance DescribeInstances
    # that is a third of the client's time. EC2 writes plain ISO 8601, which the stdlib reads.
    core.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=parse_timestamp
    )
    # The loader caches what it parses; create_client and get_paginator then reuse it.
    loader = core.get_component("data_loader")
    for kind in ("service-2", "paginators-1", "endpoint-rule-set-1"):
        loader.load_service_model("ec2", kind)
    for name in ("endpoints", "partitions", "_retry", "sdk-default-configuration"):
        loader.load_data(name)
    return aioboto3.Session(botocore_session=core, profile_name=profile)


def parse_timestamp(value: str) -> datetime:
    """EC2's ISO 8601 timestamps, falling back to botocore's parser for anything else (SSM's
    JSON protocol sends epoch seconds)."""
    try:
        parsed = datetime.fromisoformat(value)
    except (ValueError, TypeError):
        from botocore.utils import parse_timestamp as botocore_parse

        return cast(datetime, botocore_parse(value))
    return parsed
