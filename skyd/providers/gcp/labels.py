"""GCE label and instance-name rules applied to skyd's tags and client tokens."""

from __future__ import annotations

import hashlib
import re

_INVALID = re.compile(r"[^a-z0-9_-]")
MAX_LABEL = 63


def label_key(key: str) -> str:
    """Lowercase letters, digits, `_` and `-`, starting with a letter, at most 63 chars."""
    cleaned = _INVALID.sub("-", key.lower())[:MAX_LABEL]
    return cleaned if cleaned[:1].isalpha() else ("k" + cleaned)[:MAX_LABEL]


def label_value(value: str) -> str:
    return _INVALID.sub("-", value.lower())[:MAX_LABEL]


def labels_for(tags: dict[str, str]) -> dict[str, str]:
    return {label_key(k): label_value(v) for k, v in tags.items()}


def instance_names(job_id: int, client_token: str, num_nodes: int) -> list[str]:
    """Stable per token, so a retried insert hits the same names (GCE names are unique)."""
    digest = hashlib.sha256(client_token.encode()).hexdigest()[:10]
    return [f"skyd-{job_id}-{digest}-{i}" for i in range(num_nodes)]


def label_filter(tags: dict[str, str]) -> str:
    return " ".join(
        f'(labels.{label_key(k)} = "{label_value(v)}")' for k, v in sorted(tags.items())
    )
