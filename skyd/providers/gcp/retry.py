"""What the GCP adapter's google-api-core Retry retries, and the Retry built from its config."""

from __future__ import annotations

from typing import Any

from skyd.providers.gcp.config import GcpConfig

_RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "backendError"})


def sdk_retryable(exc: BaseException) -> bool:
    """What google-api-core's Retry retries: throttling, the service's 5xx and transport
    failures. Everything else (a 409 name clash, a quota, a bad field) goes to the caller."""
    import requests
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.GoogleAPICallError):
        status = int(exc.code or 0)
        reasons = {str(e.get("reason", "")) for e in (exc.errors or []) if isinstance(e, dict)}
        return status == 429 or status >= 500 or bool(reasons & _RATE_REASONS)
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def sdk_retry(config: GcpConfig) -> Any:
    """The Retry every call of the adapter passes: exponential, bounded by the config."""
    from google.api_core.retry import Retry

    return Retry(
        predicate=sdk_retryable,
        initial=config.retry_initial_s,
        maximum=max(config.retry_initial_s, 30.0),
        multiplier=2.0,
        timeout=config.retry_deadline_s,
    )
