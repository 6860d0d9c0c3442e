"""Names of skyd's Kubernetes instances, and API / connection failures as skyd's errors."""

from __future__ import annotations

import json

from kubernetes_asyncio.client.rest import ApiException

from skyd.errors import AuthError, ProviderError, QuotaError, TransientError

K8S_CLOUD = "kubernetes"


def instance_id(context: str, job: str, index: int) -> str:
    return f"{job}.{index}@{context}"


def parse_instance_id(iid: str) -> tuple[str, str, int] | None:
    head, sep, context = iid.rpartition("@")
    job, dot, index = head.rpartition(".")
    if not sep or not dot or not index.isdigit():
        return None
    return context, job, int(index)


def translate(exc: BaseException, context: str) -> ProviderError:
    """An API or connection failure → skyd's error, keeping the API server's own message."""
    scope = f"{K8S_CLOUD}/{context}"
    if isinstance(exc, ApiException):
        try:
            message = json.loads(exc.body or "{}").get("message") or exc.reason
        except (json.JSONDecodeError, AttributeError):
            message = exc.reason
        said = f"Kubernetes context {context} answered {exc.status}: {message}"
        if exc.status in (401,):
            return AuthError(said, scope=scope)
        if exc.status == 403 and "exceeded quota" in str(message):
            return QuotaError(said, scope=scope)
        if exc.status == 403 and "denied the request" not in str(message):
            return AuthError(said, scope=scope)
        if exc.status in (429,) or (exc.status or 0) >= 500:
            return TransientError(said, scope=scope)
        # 400/403/422: invalid object or an admission webhook's refusal: a fact about the
        # cluster's rules, not a passing state; the context is blocked with its words
        return AuthError(said, scope=scope)
    if isinstance(exc, OSError | TimeoutError):
        return TransientError(f"Kubernetes context {context} is unreachable: {exc}", scope=scope)
    return TransientError(f"Kubernetes context {context}: {exc!r}", scope=scope)
