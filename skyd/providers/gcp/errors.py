"""Translation of Compute Engine failures (HTTP and operation errors) into ProviderErrors."""

from __future__ import annotations

from collections.abc import Iterable

from skyd.errors import AuthError, CapacityError, ProviderError, QuotaError, TransientError

CLOUD = "gcp"

_CAPACITY_CODES = frozenset(
    {
        "ZONE_RESOURCE_POOL_EXHAUSTED",
        "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
        "RESOURCE_POOL_EXHAUSTED",
        "STOCKOUT",
        "UNSUPPORTED_OPERATION",
        "RESOURCE_NOT_AVAILABLE",
    }
)
_QUOTA_CODES = frozenset({"QUOTA_EXCEEDED", "quotaExceeded", "limitExceeded"})
_THROTTLE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "backendError"})


def region_of(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def scopes(zone: str | None) -> tuple[str, str]:
    if not zone:
        return CLOUD, CLOUD
    region = f"{CLOUD}/{region_of(zone)}"
    return region, f"{region}/{zone}"


def _quota_error(text: str, zone: str | None) -> QuotaError:
    region_scope, _ = scopes(zone)
    # GPUS_ALL_REGIONS and other global quotas block the whole cloud, not one region.
    cloud_wide = "ALL_REGIONS" in text or "global" in text.lower()
    return QuotaError(text, scope=CLOUD if cloud_wide else region_scope)


def translate_operation_errors(
    errors: Iterable[tuple[str, str]], zone: str | None
) -> ProviderError:
    """An operation that ended in error: (code, message) pairs from operation.error.errors."""
    pairs = list(errors)
    text = "; ".join(f"{c}: {m}" for c, m in pairs) or "operation failed"
    codes = {c for c, _ in pairs}
    region_scope, zone_scope = scopes(zone)
    if codes & _CAPACITY_CODES:
        return CapacityError(f"gcp {text}", scope=zone_scope)
    if codes & _QUOTA_CODES:
        return _quota_error(f"gcp {text}", zone)
    return ProviderError(f"gcp {text}", scope=region_scope)


def translate_exception(exc: BaseException, zone: str | None) -> ProviderError:
    """Map google-api-core / google-auth / requests exceptions to ProviderErrors."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    region_scope, zone_scope = scopes(zone)
    if isinstance(exc, gexc.GoogleAPICallError):
        status = int(exc.code or 0)
        reasons = {str(e.get("reason", "")) for e in (exc.errors or []) if isinstance(e, dict)}
        text = f"gcp {status} {exc.message}"
        if reasons & _CAPACITY_CODES or "ZONE_RESOURCE_POOL_EXHAUSTED" in text:
            return CapacityError(text, scope=zone_scope)
        if reasons & _QUOTA_CODES or "QUOTA_EXCEEDED" in text:
            return _quota_error(text, zone)
        if status == 429 or status >= 500 or reasons & _THROTTLE_REASONS:
            return TransientError(text, scope=region_scope)
        if status in (401, 403):
            return AuthError(text, scope=CLOUD)
        return ProviderError(text, scope=region_scope)
    if isinstance(exc, gexc.RetryError | gexc.DeadlineExceeded):
        return TransientError(f"gcp deadline: {exc}", scope=region_scope)
    if isinstance(exc, auth_exc.DefaultCredentialsError | auth_exc.RefreshError):
        return AuthError(f"gcp credentials: {exc}", scope=CLOUD)
    if isinstance(exc, auth_exc.TransportError):
        return TransientError(f"gcp transport: {exc}", scope=region_scope)
    import requests

    if isinstance(exc, requests.RequestException | TimeoutError | OSError):
        return TransientError(f"gcp transport: {exc!r}", scope=region_scope)
    return ProviderError(f"gcp: {exc!r}", scope=region_scope)
