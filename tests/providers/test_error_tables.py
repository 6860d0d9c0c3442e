"""Every error code each cloud adapter can receive maps to one core action; unmapped codes
become UnknownProviderError (failed after a capped number of tries, never requeued forever)."""

from __future__ import annotations

import pytest

from skyd.errors import (
    AuthError,
    CapacityError,
    QuotaError,
    RequestRefusedError,
    TransientError,
    UnknownProviderError,
)
from skyd.providers.aws import errors as aws
from skyd.providers.azure import errors as azure
from skyd.providers.error_map import Action, Kind, action_of
from skyd.providers.gcp import errors as gcp

_CLASS = {Kind.CAPACITY: CapacityError, Kind.QUOTA: QuotaError, Kind.AUTH: AuthError}


def _expected_class(action: Action, kind: Kind) -> type:
    if action is Action.RETRY:
        return TransientError
    if action is Action.FAIL_JOB:
        return RequestRefusedError
    return _CLASS[kind]


@pytest.mark.parametrize(("code", "row"), sorted(aws.ERROR_CODES.items()))
def test_every_aws_code_has_its_action(code: str, row: tuple[Action, Kind, str]) -> None:
    error = aws.translate_error_code(code, 400, "m", "us-east-1", "use1-az1")
    action, kind, fix = row
    assert type(error) is _expected_class(action, kind)
    assert action_of(error) is action
    assert {
        Action.BLOCK_ZONE: "aws/us-east-1/use1-az1",
        Action.BLOCK_REGION: "aws/us-east-1",
        Action.BLOCK_CLOUD: "aws",
        Action.RETRY: "aws/us-east-1",
        Action.FAIL_JOB: "aws/us-east-1",
    }[action] == error.scope
    if action is Action.FAIL_JOB:
        assert fix and f"fix: {fix}" in error.message


@pytest.mark.parametrize(("code", "row"), sorted(gcp.ERROR_CODES.items()))
def test_every_gcp_code_has_its_action(code: str, row: tuple[Action, Kind, str]) -> None:
    error = gcp.translate_codes([code], "gcp m", 400, "us-central1-a")
    action, kind, _ = row
    assert type(error) is _expected_class(action, kind)
    assert action_of(error) is action


@pytest.mark.parametrize(("code", "row"), sorted(azure.ERROR_CODES.items()))
def test_every_azure_code_has_its_action(code: str, row: tuple[Action, Kind, str]) -> None:
    error = azure.translate_error_code(code, 400, "m", "eastus", "azure/eastus//Standard_D2")
    action, kind, _ = row
    assert type(error) is _expected_class(action, kind)
    assert action_of(error) is action


def test_unknown_codes_are_their_own_type_whatever_the_cloud() -> None:
    errors = [
        aws.translate_error_code("BrandNewThing", 400, "m", "us-east-1", None),
        gcp.translate_codes(["brandNewThing"], "gcp m", 400, "us-central1-a"),
        azure.translate_error_code("BrandNewThing", 400, "m", "eastus", None),
    ]
    assert [type(e) for e in errors] == [UnknownProviderError] * 3
    assert all("no mapping" in e.message for e in errors)
    # The HTTP status still says something when the code does not.
    assert isinstance(
        aws.translate_error_code("BrandNewThing", 503, "m", "r", None), TransientError
    )
    assert isinstance(azure.translate_error_code("New", 403, "m", "eastus", None), AuthError)


def test_gcp_global_quota_blocks_the_cloud_and_capacity_wins_over_generic_reasons() -> None:
    error = gcp.translate_codes(["QUOTA_EXCEEDED"], "Quota 'GPUS_ALL_REGIONS'", 0, "us-east1-b")
    assert isinstance(error, QuotaError) and error.scope == "gcp"
    mixed = gcp.translate_codes(["invalid", "ZONE_RESOURCE_POOL_EXHAUSTED"], "m", 0, "us-east1-b")
    assert isinstance(mixed, CapacityError) and mixed.scope == "gcp/us-east1/us-east1-b"


def test_azure_operation_not_allowed_is_a_quota_only_when_it_says_so() -> None:
    quota = azure.translate_error_code(
        "OperationNotAllowed", 409, "exceeding quota", "eastus", None
    )
    other = azure.translate_error_code("OperationNotAllowed", 409, "VM is busy", "eastus", None)
    assert isinstance(quota, QuotaError) and isinstance(other, RequestRefusedError)
