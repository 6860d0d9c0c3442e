"""Translation of EC2 / botocore failures into skyd's ProviderError tree."""

from __future__ import annotations

from skyd.errors import (
    AuthError,
    CapacityError,
    ProviderError,
    QuotaError,
    TransientError,
)

CLOUD = "aws"

_CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientCapacity",
        "SpotMaxPriceTooLow",
        "InsufficientFreeAddressesInSubnet",
        "Unsupported",  # instance type not offered in this AZ
    }
)
_QUOTA_CODES = frozenset(
    {
        "VcpuLimitExceeded",
        "InstanceLimitExceeded",
        "MaxSpotInstanceCountExceeded",
        "AddressLimitExceeded",
        "SecurityGroupLimitExceeded",
        "KeyPairLimitExceeded",
        "ResourceLimitExceeded",
    }
)
_AUTH_CODES = frozenset(
    {
        "AuthFailure",
        "UnauthorizedOperation",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "OptInRequired",
        "Blocked",
        "PendingVerification",
        "ExpiredToken",
        "AccessDenied",
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "ServiceUnavailable",
        "Unavailable",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
    }
)


def translate_error_code(
    code: str, status: int, message: str, region: str | None, zone: str | None
) -> ProviderError:
    """Map one EC2 error (code + HTTP status) to the skyd error whose scope the core blocks."""
    region_scope = f"{CLOUD}/{region}" if region else CLOUD
    zone_scope = f"{region_scope}/{zone}" if region and zone else region_scope
    text = f"aws {code}: {message}" if message else f"aws {code}"
    if code in _CAPACITY_CODES:
        return CapacityError(text, scope=zone_scope)
    if code in _QUOTA_CODES or (code.endswith("LimitExceeded") and code != "RequestLimitExceeded"):
        return QuotaError(text, scope=region_scope)
    if code in _AUTH_CODES or status in (401, 403):
        return AuthError(text, scope=CLOUD)
    if code in _TRANSIENT_CODES or status == 429 or status >= 500:
        return TransientError(text, scope=region_scope)
    return ProviderError(text, scope=region_scope)


def translate_exception(exc: BaseException, region: str | None, zone: str | None) -> ProviderError:
    """Map any botocore / transport exception to a ProviderError (unknown ones stay generic)."""
    from botocore import exceptions as bce

    region_scope = f"{CLOUD}/{region}" if region else CLOUD
    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return translate_error_code(
            str(error.get("Code", "")), status, str(error.get("Message", "")), region, zone
        )
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError | bce.NoRegionError):
        return AuthError(f"aws credentials/config: {exc}", scope=CLOUD)
    if isinstance(
        exc,
        bce.ReadTimeoutError
        | bce.ConnectTimeoutError
        | bce.EndpointConnectionError
        | bce.ConnectionClosedError
        | bce.HTTPClientError,
    ):
        return TransientError(f"aws transport: {exc}", scope=region_scope)
    if isinstance(exc, TimeoutError | OSError):
        return TransientError(f"aws transport: {exc!r}", scope=region_scope)
    return ProviderError(f"aws: {exc!r}", scope=region_scope)
