"""Every Compute Engine failure the GCP adapter can meet (HTTP reasons and operation error
codes), mapped to what the core does."""

from __future__ import annotations

from collections.abc import Iterable

from skyd.errors import AuthError, ProviderError, TransientError
from skyd.providers.error_map import Action, Kind, Rule, error_for, rule
from skyd.providers.error_map import scopes as scope_map

CLOUD = "gcp"

_ZONE_CAPACITY = rule(Action.BLOCK_ZONE, Kind.CAPACITY)
_REGION_QUOTA = rule(Action.BLOCK_REGION, Kind.QUOTA)
_CLOUD_QUOTA = rule(Action.BLOCK_CLOUD, Kind.QUOTA)
_CLOUD_AUTH = rule(Action.BLOCK_CLOUD, Kind.AUTH)
_RETRY = rule(Action.RETRY)


def _fail(fix: str) -> Rule:
    return rule(Action.FAIL_JOB, fix=fix)


_FIELD_FIX = "check gcp.image, gcp.network/subnetwork and the task's resources"

# Operation error codes (operation.error.errors[].code) and HTTP error reasons
# (error.errors[].reason) Compute Engine answers instances.insert/get/list/aggregatedList/
# stop/start/delete and zoneOperations.wait/list with.
ERROR_CODES: dict[str, Rule] = {
    # operation errors
    "ZONE_RESOURCE_POOL_EXHAUSTED": _ZONE_CAPACITY,
    "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS": _ZONE_CAPACITY,
    "RESOURCE_POOL_EXHAUSTED": _ZONE_CAPACITY,
    "STOCKOUT": _ZONE_CAPACITY,
    "RESOURCE_NOT_AVAILABLE": _ZONE_CAPACITY,
    "QUOTA_EXCEEDED": _REGION_QUOTA,
    "INTERNAL_ERROR": _RETRY,
    "RESOURCE_OPERATION_RATE_EXCEEDED": _RETRY,
    "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE": _RETRY,
    "CONDITION_NOT_MET": _RETRY,
    "TIMEOUT": _RETRY,
    "RESOURCE_NOT_FOUND": _fail(_FIELD_FIX),
    "INVALID_FIELD_VALUE": _fail(_FIELD_FIX),
    "INVALID_USAGE": _fail(_FIELD_FIX),
    "REQUIRED_FIELD_MISSING": _fail(_FIELD_FIX),
    "UNSUPPORTED_OPERATION": _fail("the machine type, accelerator and scheduling must fit"),
    "PERMISSIONS_ERROR": _CLOUD_AUTH,
    # HTTP reasons
    "quotaExceeded": _REGION_QUOTA,
    "limitExceeded": _REGION_QUOTA,
    "rateLimitExceeded": _RETRY,
    "userRateLimitExceeded": _RETRY,
    "backendError": _RETRY,
    "internalError": _RETRY,
    "resourceNotReady": _RETRY,
    "resourceInUseByAnotherResource": _RETRY,
    "conflict": _RETRY,
    "alreadyExists": _RETRY,
    "forbidden": _CLOUD_AUTH,
    "authError": _CLOUD_AUTH,
    "unauthorized": _CLOUD_AUTH,
    "insufficientPermissions": _CLOUD_AUTH,
    "accessNotConfigured": _CLOUD_AUTH,  # the Compute Engine API is not enabled
    "notFound": _fail(_FIELD_FIX),
    "invalid": _fail(_FIELD_FIX),
    "badRequest": _fail(_FIELD_FIX),
    "invalidParameter": _fail(_FIELD_FIX),
    "required": _fail(_FIELD_FIX),
    "INVALID_ARGUMENT": _fail(_FIELD_FIX),  # the JSON payload itself does not parse
}


def region_of(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def scopes(zone: str | None) -> tuple[str, str]:
    if not zone:
        return CLOUD, CLOUD
    region = f"{CLOUD}/{region_of(zone)}"
    return region, f"{region}/{zone}"


def _lookup(codes: Iterable[str], text: str, status: int) -> Rule | None:
    found = [ERROR_CODES[c] for c in codes if c in ERROR_CODES]
    # The most specific signal wins: capacity and quota over anything generic.
    for wanted in (_ZONE_CAPACITY, _REGION_QUOTA):
        if wanted in found:
            if wanted is _REGION_QUOTA and ("ALL_REGIONS" in text or "global" in text.lower()):
                return _CLOUD_QUOTA  # GPUS_ALL_REGIONS and other global quotas
            return wanted
    if found:
        return found[0]
    if "ZONE_RESOURCE_POOL_EXHAUSTED" in text:
        return _ZONE_CAPACITY
    if status == 429 or status >= 500:
        return _RETRY
    if status in (401, 403):
        return _CLOUD_AUTH
    return None


def translate_codes(
    codes: Iterable[str], text: str, status: int, zone: str | None
) -> ProviderError:
    region = region_of(zone) if zone else None
    return error_for(_lookup(list(codes), text, status), text, scope_map(CLOUD, region, zone))


def translate_operation_errors(
    errors: Iterable[tuple[str, str]], zone: str | None
) -> ProviderError:
    """An operation that ended in error: (code, message) pairs from operation.error.errors."""
    pairs = list(errors)
    text = "; ".join(f"{c}: {m}" for c, m in pairs) or "operation failed"
    return translate_codes([c for c, _ in pairs], f"gcp {text}", 0, zone)


def translate_exception(exc: BaseException, zone: str | None) -> ProviderError:
    """Map google-api-core / google-auth / requests exceptions to ProviderErrors."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    region_scope, _ = scopes(zone)
    if isinstance(exc, gexc.GoogleAPICallError):
        status = int(exc.code or 0)
        reasons = [str(e.get("reason", "")) for e in (exc.errors or []) if isinstance(e, dict)]
        if not reasons and exc.reason:
            reasons = [str(exc.reason)]
        return translate_codes(reasons, f"gcp {status} {exc.message}", status, zone)
    if isinstance(exc, gexc.RetryError | gexc.DeadlineExceeded):
        cause = exc.cause if isinstance(exc, gexc.RetryError) else None
        if cause is not None:
            return translate_exception(cause, zone)
        return TransientError(f"gcp deadline: {exc}", scope=region_scope)
    if isinstance(exc, auth_exc.DefaultCredentialsError | auth_exc.RefreshError):
        return AuthError(f"gcp credentials: {exc}", scope=CLOUD)
    if isinstance(exc, auth_exc.TransportError):
        return TransientError(f"gcp transport: {exc}", scope=region_scope)
    import requests

    if isinstance(exc, requests.RequestException | TimeoutError | OSError):
        return TransientError(f"gcp transport: {exc!r}", scope=region_scope)
    return translate_codes([], f"gcp: {exc!r}", 0, zone)
