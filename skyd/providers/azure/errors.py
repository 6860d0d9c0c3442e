"""Translation of Azure Resource Manager failures into skyd's ProviderError tree."""

from __future__ import annotations

from skyd.errors import AuthError, CapacityError, ProviderError, QuotaError, TransientError

CLOUD = "azure"

_CAPACITY_CODES = frozenset(
    {
        "SkuNotAvailable",
        "AllocationFailed",
        "ZonalAllocationFailed",
        "OverconstrainedAllocationRequest",
        "OverconstrainedZonalAllocationRequest",
        "AllocationFailedVMSizeNotAvailable",
        "SpotMaxPriceTooLow",
    }
)
_QUOTA_CODES = frozenset(
    {
        "QuotaExceeded",
        "OperationNotAllowedQuota",
        "SpotVMQuotaExceeded",
        "PublicIPCountLimitReached",
    }
)
_AUTH_CODES = frozenset(
    {
        "AuthenticationFailed",
        "AuthorizationFailed",
        "InvalidAuthenticationToken",
        "InvalidAuthenticationTokenTenant",
        "ExpiredAuthenticationToken",
        "LinkedAuthorizationFailed",
        "SubscriptionNotFound",
        "MissingSubscriptionRegistration",
    }
)
_TRANSIENT_CODES = frozenset(
    {"TooManyRequests", "RetryableError", "InternalServerError", "ServerTimeout", "Conflict"}
)


def translate_error_code(
    code: str,
    status: int,
    message: str,
    region: str | None,
    capacity_scope: str | None,
    retry_after: float | None = None,
) -> ProviderError:
    """One ARM error (code, HTTP status, message) as the skyd error whose scope is blocked."""
    region_scope = f"{CLOUD}/{region}" if region else CLOUD
    text = f"azure {code or status}: {message}"
    if code in _CAPACITY_CODES:
        return CapacityError(text, scope=capacity_scope or region_scope)
    # OperationNotAllowed covers many refusals; only the quota ones block the region.
    if code in _QUOTA_CODES or (code == "OperationNotAllowed" and "quota" in message.lower()):
        return QuotaError(text, scope=region_scope)
    if code in _AUTH_CODES or status in (401, 403):
        return AuthError(text, scope=CLOUD)
    if code in _TRANSIENT_CODES or status == 429 or status >= 500:
        return TransientError(text, scope=region_scope, retry_after=retry_after)
    return ProviderError(text, scope=region_scope)


def translate_exception(
    exc: BaseException, region: str | None, capacity_scope: str | None
) -> ProviderError:
    """Map azure-core exceptions (HTTP, LRO failures, transport) to ProviderErrors."""
    from azure.core import exceptions as aexc

    region_scope = f"{CLOUD}/{region}" if region else CLOUD
    if isinstance(exc, aexc.HttpResponseError):
        status = int(exc.status_code or 0)
        code = ""
        message = exc.message or str(exc)
        if exc.error is not None:
            code = str(exc.error.code or "")
            message = str(exc.error.message or message)
        retry_after = None
        headers = getattr(exc.response, "headers", None)
        if headers is not None:
            header = headers.get("Retry-After")
            if header and header.isdigit():
                retry_after = float(header)
        if isinstance(exc, aexc.ClientAuthenticationError) and not code:
            code = "AuthenticationFailed"
        return translate_error_code(code, status, message, region, capacity_scope, retry_after)
    if isinstance(exc, aexc.ServiceRequestError | aexc.ServiceResponseError):
        return TransientError(f"azure transport: {exc}", scope=region_scope)
    if isinstance(exc, aexc.ClientAuthenticationError):
        return AuthError(f"azure credentials: {exc}", scope=CLOUD)
    if isinstance(exc, TimeoutError | OSError):
        return TransientError(f"azure transport: {exc!r}", scope=region_scope)
    if type(exc).__name__ == "CredentialUnavailableError":
        return AuthError(f"azure credentials: {exc}", scope=CLOUD)
    return ProviderError(f"azure: {exc!r}", scope=region_scope)
