"""The fake API server's object store: resource versions, label selectors, watch fan-out."""

from __future__ import annotations

import asyncio
import copy
import datetime
import uuid
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def matches(labels: dict[str, str], selector: str) -> bool:
    """Equality-based label selectors (`a=b,c!=d,e`), as the API accepts them."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class Watcher:
    kind: str
    namespace: str | None
    selector: str
    queue: asyncio.Queue[tuple[str, Obj]] = field(default_factory=asyncio.Queue)


class ObjectStore:
    """Objects by (kind, namespace, name); every change bumps one resourceVersion counter
    and is offered to the watchers of that kind, as etcd and the watch cache do."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.version = 1
        self.watchers: list[Watcher] = []
        self.history: list[tuple[int, str, str, Obj]] = []  # (rv, kind, event type, object)

    def _bump(self, obj: Obj) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)

    def _announce(self, kind: str, event: str, obj: Obj) -> None:
        snapshot = copy.deepcopy(obj)
        self.history.append((self.version, kind, event, snapshot))
        del self.history[:-1000]
        namespace = obj["metadata"].get("namespace")
        for watcher in self.watchers:
            if watcher.kind != kind:
                continue
            if watcher.namespace not in (None, namespace):
                continue
            if matches(obj["metadata"].get("labels") or {}, watcher.selector):
                watcher.queue.put_nowait((event, snapshot))

    def create(self, kind: str, namespace: str, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            meta["name"] = f"{meta.get('generateName', 'obj-')}{uuid.uuid4().hex[:5]}"
        meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        self._bump(obj)
        self.objects[(kind, namespace, meta["name"])] = obj
        self._announce(kind, "ADDED", obj)
        return obj

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.objects.get((kind, namespace, name))

    def modified(self, kind: str, obj: Obj) -> None:
        self._bump(obj)
        self._announce(kind, "MODIFIED", obj)

    def delete(self, kind: str, namespace: str, name: str) -> Obj | None:
        obj = self.objects.pop((kind, namespace, name), None)
        if obj is not None:
            self._bump(obj)
            self._announce(kind, "DELETED", obj)
        return obj

    def select(self, kind: str, namespace: str | None, selector: str = "") -> list[Obj]:
        return [
            obj
            for (k, ns, _), obj in sorted(self.objects.items())
            if k == kind
            and namespace in (None, ns)
            and matches(obj["metadata"].get("labels") or {}, selector)
        ]

    def since(self, kind: str, namespace: str | None, selector: str, rv: int) -> list[Any]:
        """Events after resourceVersion `rv` (what a watch from that version replays)."""
        return [
            (event, obj)
            for version, k, event, obj in self.history
            if version > rv
            and k == kind
            and namespace in (None, obj["metadata"].get("namespace"))
            and matches(obj["metadata"].get("labels") or {}, selector)
        ]
