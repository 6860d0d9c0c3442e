"""Every EC2 / botocore failure the AWS adapter can meet, mapped to what the core does."""

from __future__ import annotations

from skyd.errors import AuthError, ProviderError, TransientError
from skyd.providers.error_map import Action, Kind, Rule, error_for, rule, scopes

CLOUD = "aws"

_ZONE_CAPACITY = rule(Action.BLOCK_ZONE, Kind.CAPACITY)
_REGION_QUOTA = rule(Action.BLOCK_REGION, Kind.QUOTA)
_REGION_ACCESS = rule(Action.BLOCK_REGION, Kind.AUTH)
_CLOUD_AUTH = rule(Action.BLOCK_CLOUD, Kind.AUTH)
_RETRY = rule(Action.RETRY)


def _fail(fix: str) -> Rule:
    return rule(Action.FAIL_JOB, fix=fix)


_IMAGE_FIX = "set aws.image_ids[REGION] (or aws.default_image_id) to an AMI that exists there"
_NETWORK_FIX = "set aws.subnet_ids[REGION] to a subnet of a VPC in that region, or create a VPC"

# EC2 API error codes (docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)
# for the calls the adapter makes: RunInstances, Describe*, Start/Stop/TerminateInstances,
# security groups, key pairs, SSM GetParameter.
ERROR_CODES: dict[str, Rule] = {
    # capacity: this zone, now
    "InsufficientInstanceCapacity": _ZONE_CAPACITY,
    "InsufficientHostCapacity": _ZONE_CAPACITY,
    "InsufficientReservedInstanceCapacity": _ZONE_CAPACITY,
    "InsufficientCapacity": _ZONE_CAPACITY,
    "InsufficientCapacityOnHost": _ZONE_CAPACITY,
    "SpotMaxPriceTooLow": _ZONE_CAPACITY,
    "InsufficientFreeAddressesInSubnet": _ZONE_CAPACITY,
    "Unsupported": _ZONE_CAPACITY,  # instance type not offered in this AZ
    # quotas and limits: this region
    "VcpuLimitExceeded": _REGION_QUOTA,
    "InstanceLimitExceeded": _REGION_QUOTA,
    "MaxSpotInstanceCountExceeded": _REGION_QUOTA,
    "AddressLimitExceeded": _REGION_QUOTA,
    "SecurityGroupLimitExceeded": _REGION_QUOTA,
    "RulesPerSecurityGroupLimitExceeded": _REGION_QUOTA,
    "KeyPairLimitExceeded": _REGION_QUOTA,
    "ResourceLimitExceeded": _REGION_QUOTA,
    "VolumeLimitExceeded": _REGION_QUOTA,
    "MaxIOPSLimitExceeded": _REGION_QUOTA,
    "NetworkInterfaceLimitExceeded": _REGION_QUOTA,
    "InsufficientAddressCapacity": _REGION_QUOTA,
    # the account may not use this region
    "OptInRequired": _REGION_ACCESS,
    "PendingVerification": _REGION_ACCESS,
    # credentials and account: the whole cloud
    "AuthFailure": _CLOUD_AUTH,
    "UnauthorizedOperation": _CLOUD_AUTH,
    "InvalidClientTokenId": _CLOUD_AUTH,
    "SignatureDoesNotMatch": _CLOUD_AUTH,
    "IncompleteSignature": _CLOUD_AUTH,
    "MissingAuthenticationToken": _CLOUD_AUTH,
    "Blocked": _CLOUD_AUTH,
    "ExpiredToken": _CLOUD_AUTH,
    "AccessDenied": _CLOUD_AUTH,
    "AccessDeniedException": _CLOUD_AUTH,
    # the cloud's own trouble, throttling, or a state that passes
    "RequestLimitExceeded": _RETRY,
    "Throttling": _RETRY,
    "ThrottlingException": _RETRY,
    "RequestThrottled": _RETRY,
    "RequestResourceCountExceeded": _RETRY,
    "ServiceUnavailable": _RETRY,
    "Unavailable": _RETRY,
    "InternalError": _RETRY,
    "InternalFailure": _RETRY,
    "RequestTimeout": _RETRY,
    "RequestExpired": _RETRY,
    "IncorrectInstanceState": _RETRY,
    "IncorrectState": _RETRY,
    "DependencyViolation": _RETRY,
    "InvalidGroup.Duplicate": _RETRY,
    "InvalidKeyPair.Duplicate": _RETRY,
    "InvalidInstanceID.NotFound": _RETRY,  # eventual consistency right after a launch
    # the request itself is wrong: the same launch anywhere would fail the same way
    "InvalidAMIID.NotFound": _fail(_IMAGE_FIX),
    "InvalidAMIID.Malformed": _fail(_IMAGE_FIX),
    "InvalidAMIID.Unavailable": _fail(_IMAGE_FIX),
    "InvalidSubnetID.NotFound": _fail(_NETWORK_FIX),
    "InvalidSubnet": _fail(_NETWORK_FIX),
    "InvalidVpcID.NotFound": _fail(_NETWORK_FIX),
    "VPCIdNotSpecified": _fail(_NETWORK_FIX),
    "MissingInput": _fail(_NETWORK_FIX),
    "InvalidGroup.NotFound": _fail("check aws.security_group_ids or let skyd create one"),
    "InvalidKeyPair.NotFound": _fail("check aws.ssh_public_key"),
    "InvalidKeyPair.Format": _fail("aws.ssh_public_key must be an OpenSSH public key line"),
    "InvalidBlockDeviceMapping": _fail("check the image's root device and disk_size"),
    "InvalidParameterValue": _fail("check the task's resources and the [aws] settings"),
    "InvalidParameterCombination": _fail("check the task's resources and the [aws] settings"),
    "InvalidParameter": _fail("check the task's resources and the [aws] settings"),
    "MissingParameter": _fail("check the [aws] settings"),
    "UnknownParameter": _fail("check the [aws] settings"),
    "InvalidInstanceType": _fail("pick an instance type the region offers"),
    "IdempotentParameterMismatch": _fail("a client token was reused for another request"),
    "UnsupportedOperation": _fail("the instance type, image or market do not go together"),
    "InvalidInstanceID.Malformed": _fail("skyd passed a malformed instance id; report it"),
    "ParameterNotFound": _fail(_IMAGE_FIX),  # SSM: no such public image parameter
}


def translate_error_code(
    code: str, status: int, message: str, region: str | None, zone: str | None
) -> ProviderError:
    """Map one EC2 error (code + HTTP status) to the skyd error whose scope the core blocks."""
    text = f"aws {code}: {message}" if message else f"aws {code}"
    found = ERROR_CODES.get(code)
    if found is None and code.endswith("LimitExceeded"):
        found = _REGION_QUOTA
    if found is None and (status == 429 or status >= 500):
        found = _RETRY  # the cloud's side, whatever it calls it
    if found is None and status in (401, 403):
        found = _CLOUD_AUTH
    return error_for(found, text, scopes(CLOUD, region, zone))


def translate_exception(exc: BaseException, region: str | None, zone: str | None) -> ProviderError:
    """Map any botocore / transport exception to a ProviderError (unmapped ones: unknown)."""
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
    return error_for(None, f"aws: {exc!r}", scopes(CLOUD, region, zone))
