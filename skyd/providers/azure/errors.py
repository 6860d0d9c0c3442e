"""Every Azure Resource Manager failure the Azure adapter can meet, mapped to what the core
does."""

from __future__ import annotations

from skyd.errors import AuthError, ProviderError, TransientError
from skyd.providers.error_map import Action, Kind, Rule, error_for, rule, scopes

CLOUD = "azure"

# Azure catalogs have no zones: a capacity error blocks the offering (the caller's scope).
_CAPACITY = rule(Action.BLOCK_ZONE, Kind.CAPACITY)
_REGION_QUOTA = rule(Action.BLOCK_REGION, Kind.QUOTA)
_CLOUD_AUTH = rule(Action.BLOCK_CLOUD, Kind.AUTH)
_RETRY = rule(Action.RETRY)


def _fail(fix: str) -> Rule:
    return rule(Action.FAIL_JOB, fix=fix)


_IMAGE_FIX = "set azure.image_publisher/offer/sku/version to an image offered in that region"
_BODY_FIX = "check the task's resources and the [azure] settings"
_ACCOUNT_FIX = "check azure.subscription_id and azure.resource_group"

# ARM error codes (learn.microsoft.com/azure/azure-resource-manager/troubleshooting/
# common-deployment-errors, and the Compute and Network resource providers' codes) for the
# calls the adapter makes: VM, NIC, public IP and NSG PUT/GET/DELETE, deallocate, start.
ERROR_CODES: dict[str, Rule] = {
    "SkuNotAvailable": _CAPACITY,
    "AllocationFailed": _CAPACITY,
    "ZonalAllocationFailed": _CAPACITY,
    "OverconstrainedAllocationRequest": _CAPACITY,
    "OverconstrainedZonalAllocationRequest": _CAPACITY,
    "AllocationFailedVMSizeNotAvailable": _CAPACITY,
    "SpotMaxPriceTooLow": _CAPACITY,
    "QuotaExceeded": _REGION_QUOTA,
    "OperationNotAllowedQuota": _REGION_QUOTA,
    "SpotVMQuotaExceeded": _REGION_QUOTA,
    "LowPriorityQuotaExceeded": _REGION_QUOTA,
    "PublicIPCountLimitReached": _REGION_QUOTA,
    "NetworkSecurityGroupCountLimitReached": _REGION_QUOTA,
    "NetworkInterfaceCountLimitReached": _REGION_QUOTA,
    "AuthenticationFailed": _CLOUD_AUTH,
    "AuthorizationFailed": _CLOUD_AUTH,
    "InvalidAuthenticationToken": _CLOUD_AUTH,
    "InvalidAuthenticationTokenTenant": _CLOUD_AUTH,
    "ExpiredAuthenticationToken": _CLOUD_AUTH,
    "LinkedAuthorizationFailed": _CLOUD_AUTH,
    "SubscriptionNotFound": _CLOUD_AUTH,
    "InvalidSubscriptionId": _CLOUD_AUTH,
    "MissingSubscriptionRegistration": _CLOUD_AUTH,
    "ResourceGroupNotFound": _CLOUD_AUTH,  # every launch would fail: a config error
    "DisallowedOperation": _CLOUD_AUTH,
    "TooManyRequests": _RETRY,
    "SubscriptionRequestsThrottled": _RETRY,
    "RetryableError": _RETRY,
    "RetryableErrorDueToAnotherOperation": _RETRY,
    "InternalServerError": _RETRY,
    "InternalExecutionError": _RETRY,
    "NetworkingInternalOperationError": _RETRY,
    "ServerTimeout": _RETRY,
    "ServiceUnavailable": _RETRY,
    "GatewayTimeout": _RETRY,
    "Conflict": _RETRY,
    "AnotherOperationInProgress": _RETRY,
    "OperationPreempted": _RETRY,
    "NicInUse": _RETRY,
    "PublicIPAddressCannotBeDeleted": _RETRY,
    "InUseNetworkSecurityGroupCannotBeDeleted": _RETRY,
    "ImageNotFound": _fail(_IMAGE_FIX),
    "PlatformImageNotFound": _fail(_IMAGE_FIX),
    "InvalidParameter": _fail(_BODY_FIX),
    "InvalidRequestContent": _fail(_BODY_FIX),
    "InvalidRequestFormat": _fail(_BODY_FIX),
    "InvalidResourceReference": _fail("check azure.virtual_network and azure.subnet exist"),
    "InvalidTemplate": _fail(_BODY_FIX),
    "PropertyChangeNotAllowed": _fail(_BODY_FIX),
    "BadRequest": _fail(_BODY_FIX),
    "ResourceNotFound": _fail(_ACCOUNT_FIX),
    "NotFound": _fail(_ACCOUNT_FIX),
    "OperationNotAllowed": _fail(_BODY_FIX),  # unless its message is about a quota
}


def translate_error_code(
    code: str,
    status: int,
    message: str,
    region: str | None,
    capacity_scope: str | None,
    retry_after: float | None = None,
) -> ProviderError:
    """One ARM error (code, HTTP status, message) as the skyd error whose scope is blocked."""
    text = f"azure {code or status}: {message}"
    found = ERROR_CODES.get(code)
    # OperationNotAllowed covers many refusals; only the quota ones block the region.
    if code == "OperationNotAllowed" and "quota" in message.lower():
        found = _REGION_QUOTA
    if found is None and (status == 429 or status >= 500):
        found = _RETRY
    if found is None and status in (401, 403):
        found = _CLOUD_AUTH
    scope_of = scopes(CLOUD, region, None)
    if capacity_scope:
        scope_of[Action.BLOCK_ZONE] = capacity_scope
    return error_for(found, text, scope_of, retry_after)


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
    return error_for(None, f"azure: {exc!r}", scopes(CLOUD, region, None))
