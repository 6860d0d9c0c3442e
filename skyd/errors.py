"""The exception tree of skyd.

    SkydError                       base of everything skyd raises on purpose
    ├── SpecError                   a task file is invalid (names field, value, fix)
    ├── NotFoundError               an unknown job, cluster, pool, … id
    ├── PermissionDeniedError       the caller may not do that
    ├── ConflictError               the request clashes with current state
    │   └── IllegalTransitionError  a job state change the lifecycle forbids
    ├── InfeasibleError             no enabled provider can ever satisfy a job
    ├── CatalogError                a catalog file is missing, corrupt or inconsistent
    │   ├── UnknownAcceleratorError an accelerator name no catalog knows
    │   └── TraceError              a spot-trace directory is missing, corrupt or inconsistent
    ├── StoreError                  the state store cannot be opened or migrated
    │   └── StateLockedError        another daemon owns the state dir or socket
    └── ProviderError               a cloud / machine pool refused or failed
        ├── CapacityError           no capacity in a zone         → block the zone
        ├── QuotaError              a quota is exhausted          → block region/cloud
        ├── AuthError               credentials / config wrong    → block the cloud
        ├── PreemptedError          the cloud took a spot instance back
        ├── TransientError          throttled / timed out         → retry with backoff
        ├── RequestRefusedError     the cloud refused the request itself (bad image, no
        │                           subnet, invalid parameter)    → fail the job, once
        └── UnknownProviderError    an error code the adapter has no mapping for
                                                                  → fail after a few tries

Every error carries a stable machine-readable `code` used in API responses.
"""

from __future__ import annotations


class SkydError(Exception):
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SpecError(SkydError):
    """`details` holds each problem when one error reports several (one line each)."""

    code = "invalid_spec"

    def __init__(
        self, message: str, field: str | None = None, details: tuple[SpecError, ...] = ()
    ) -> None:
        super().__init__(message)
        self.field = field
        self.details = details


class NotFoundError(SkydError):
    code = "not_found"


class PermissionDeniedError(SkydError):
    code = "permission_denied"


class ConflictError(SkydError):
    code = "conflict"


class IllegalTransitionError(ConflictError):
    code = "illegal_transition"


class InfeasibleError(SkydError):
    code = "infeasible"


class CatalogError(SkydError):
    code = "catalog_error"


class UnknownAcceleratorError(CatalogError):
    code = "unknown_accelerator"


class TraceError(CatalogError):
    code = "trace_error"


class StoreError(SkydError):
    code = "store_error"


class StateLockedError(StoreError):
    code = "state_locked"


class ProviderError(SkydError):
    code = "provider_error"

    def __init__(self, message: str, scope: str | None = None) -> None:
        super().__init__(message)
        # The scope to block: "cloud", "cloud/region" or "cloud/region/zone".
        self.scope = scope


class CapacityError(ProviderError):
    code = "no_capacity"


class QuotaError(ProviderError):
    code = "quota_exceeded"


class AuthError(ProviderError):
    code = "auth_error"


class PreemptedError(ProviderError):
    code = "preempted"


class TransientError(ProviderError):
    code = "transient"

    def __init__(
        self, message: str, scope: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, scope)
        self.retry_after = retry_after


class RequestRefusedError(ProviderError):
    """The cloud refused what was asked (a bad image, a missing subnet, an invalid
    parameter): trying again elsewhere or later would only repeat it, so the job fails
    with the cloud's message and the fix."""

    code = "request_refused"


class UnknownProviderError(ProviderError):
    """An error the adapter has no mapping for. The core retries it a capped number of
    times and then fails the attempt with this message, rather than requeueing forever."""

    code = "provider_unknown_error"
