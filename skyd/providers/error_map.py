"""What the core does about a cloud error code: the one vocabulary every adapter's table uses."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from skyd.errors import (
    AuthError,
    CapacityError,
    ProviderError,
    QuotaError,
    RequestRefusedError,
    TransientError,
    UnknownProviderError,
)


class Action(enum.StrEnum):
    """The core's answer to one error: which scope it blocks, or retry, or fail the job."""

    BLOCK_ZONE = "block-zone"  # no capacity there now: try another zone
    BLOCK_REGION = "block-region"  # a regional quota or limit: try another region
    BLOCK_CLOUD = "block-cloud"  # credentials, account or config: try another cloud
    RETRY = "retry"  # throttled or the cloud's own fault: same place, after a backoff
    FAIL_JOB = "fail-job"  # the request itself is wrong: fail once with the fix


class Kind(enum.StrEnum):
    """Why, for block actions: capacity and quota blocks last differently in the core."""

    CAPACITY = "capacity"
    QUOTA = "quota"
    AUTH = "auth"
    OTHER = "other"


# One row of an adapter's table: what to do, why, and (for FAIL_JOB) how to fix it.
Rule = tuple[Action, Kind, str]


def rule(action: Action, kind: Kind = Kind.OTHER, fix: str = "") -> Rule:
    return (action, kind, fix)


def scopes(cloud: str, region: str | None, zone: str | None) -> dict[Action, str]:
    region_scope = f"{cloud}/{region}" if region else cloud
    zone_scope = f"{region_scope}/{zone}" if region and zone else region_scope
    return {
        Action.BLOCK_ZONE: zone_scope,
        Action.BLOCK_REGION: region_scope,
        Action.BLOCK_CLOUD: cloud,
        Action.RETRY: region_scope,
        Action.FAIL_JOB: region_scope,
    }


def error_for(
    found: Rule | None,
    text: str,
    scope_of: Mapping[Action, str],
    retry_after: float | None = None,
) -> ProviderError:
    """The skyd error for a table row (None: an unmapped code)."""
    if found is None:
        return UnknownProviderError(
            f"{text} (an error skyd has no mapping for; the attempt fails after a few tries)",
            scope=scope_of[Action.BLOCK_REGION],
        )
    action, kind, fix = found
    scope = scope_of[action]
    if action is Action.RETRY:
        return TransientError(text, scope=scope, retry_after=retry_after)
    if action is Action.FAIL_JOB:
        return RequestRefusedError(f"{text}; fix: {fix}" if fix else text, scope=scope)
    if kind is Kind.CAPACITY:
        return CapacityError(text, scope=scope)
    if kind is Kind.QUOTA:
        return QuotaError(text, scope=scope)
    return AuthError(text, scope=scope)


def action_of(error: ProviderError) -> Action:
    """The inverse, for callers holding an error: what the core should do about it."""
    if isinstance(error, TransientError | UnknownProviderError):
        return Action.RETRY  # an unknown error: retried, and the core caps the tries
    if isinstance(error, RequestRefusedError):
        return Action.FAIL_JOB
    scope = error.scope or ""
    depth = scope.count("/")
    if depth == 0:
        return Action.BLOCK_CLOUD
    return Action.BLOCK_ZONE if depth >= 2 else Action.BLOCK_REGION
