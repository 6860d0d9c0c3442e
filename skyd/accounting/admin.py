"""Admin-only changes to the books: credit pools, projects, user limits, the lab's budget and
per-job budget overrides, each checked field by field before anything is written."""

from __future__ import annotations

import pwd
from collections.abc import Iterable, Mapping
from typing import Any

from skyd.accounting import inputs
from skyd.accounting.errors import AccountingInputError
from skyd.accounting.records import CreditPool, Project, UserLimit
from skyd.accounting.settings import AccountingSettings
from skyd.clock import Clock
from skyd.errors import PermissionDeniedError
from skyd.events import EventBus
from skyd.identity import Caller
from skyd.store import Store
from skyd.store import credits as credit_store


class AccountingAdmin:
    """What admins change: every method refuses a caller who is not an admin, and a body with
    an unknown or invalid field, before anything is written."""

    def __init__(
        self, *, store: Store, clock: Clock, bus: EventBus, settings: AccountingSettings
    ) -> None:
        self.store = store
        self.clock = clock
        self.bus = bus
        self.settings = settings

    @staticmethod
    def _require_admin(caller: Caller, what: str) -> None:
        if not caller.is_admin:
            raise PermissionDeniedError(
                f"only admins (root or the skyd admin group) may {what}; nothing was changed"
            )

    def add_pool(self, caller: Caller, body: Mapping[str, Any]) -> CreditPool:
        self._require_admin(caller, "add credit pools")
        now = self.clock.now()
        _only(
            body,
            {
                "name",
                "cloud",
                "amount",
                "expires",
                "starts",
                "account",
                "region",
                "projects",
                "users",
            },
        )
        name = inputs.plain_name("name", _required(body, "name"))
        cloud = inputs.cloud_name("cloud", _required(body, "cloud"), self.settings.known_clouds)
        amount = inputs.money_micros("amount", _required(body, "amount"))
        expires = inputs.future_moment("expires", _required(body, "expires"), now)
        starts = inputs.epoch_seconds("starts", body["starts"]) if "starts" in body else now
        if starts >= expires:
            raise AccountingInputError(
                f"starts: the pool would start ({inputs.iso(starts)}) after it expires "
                f"({inputs.iso(expires)})",
                "starts",
            )
        return credit_store.add_pool(
            self.store,
            name=name,
            cloud=cloud,
            amount_micros=amount,
            starts_at=starts,
            expires_at=expires,
            account=inputs.optional_text("account", body.get("account")),
            region=inputs.optional_text("region", body.get("region")),
            by_uid=caller.uid,
            now=now,
            projects=self._project_scope(body.get("projects")),
            users=None if body.get("users") is None else _uids("users", body["users"]),
        )

    def _project_scope(self, value: Any) -> list[str] | None:
        """A pool's `projects`: None (any), or a list of existing project names."""
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            raise AccountingInputError(
                "projects: expected a non-empty list of project names (or leave it out)",
                "projects",
            )
        names = [inputs.plain_name("projects", v) for v in value]
        known = {p.name for p in credit_store.list_projects(self.store.conn)}
        for name in names:
            if name not in known:
                raise AccountingInputError(
                    f"projects: no project {name!r}; known: {', '.join(sorted(known))}",
                    "projects",
                )
        return names

    def set_pool(self, caller: Caller, ref: str, body: Mapping[str, Any]) -> CreditPool:
        """Change a pool's total amount, expiry, start, account or region."""
        self._require_admin(caller, "change credit pools")
        now = self.clock.now()
        pool = credit_store.get_pool(self.store, ref)
        _only(body, {"amount", "expires", "starts", "account", "region", "projects", "users"})
        if not body:
            raise AccountingInputError(
                "give at least one of amount, expires, starts, account, region, projects, users",
                "amount",
            )
        changes: dict[str, Any] = {}
        if "amount" in body:
            changes["amount_micros"] = inputs.money_micros("amount", body["amount"])
        if "expires" in body:
            changes["expires_at"] = inputs.future_moment("expires", body["expires"], now)
        if "starts" in body:
            changes["starts_at"] = inputs.epoch_seconds("starts", body["starts"])
        for key in ("account", "region"):
            if key in body:
                changes[key] = inputs.optional_text(key, body[key])
        if "projects" in body:
            changes["projects_json"] = credit_store.scope_json(
                self._project_scope(body["projects"])
            )
        if "users" in body:
            users = None if body["users"] is None else _uids("users", body["users"])
            changes["users_json"] = credit_store.scope_json(users)
        starts = changes.get("starts_at", pool.starts_at)
        expires = changes.get("expires_at", pool.expires_at)
        if starts >= expires:
            raise AccountingInputError(
                f"starts: the pool would start ({inputs.iso(starts)}) after it expires "
                f"({inputs.iso(expires)})",
                "starts",
            )
        return credit_store.update_pool(
            self.store, pool.id, changes, kind="pool_set", by_uid=caller.uid, now=now
        )

    def top_up_pool(self, caller: Caller, ref: str, body: Mapping[str, Any]) -> CreditPool:
        self._require_admin(caller, "top up credit pools")
        _only(body, {"amount"})
        amount = inputs.money_micros("amount", _required(body, "amount"), allow_zero=False)
        pool = credit_store.get_pool(self.store, ref)
        return credit_store.top_up_pool(
            self.store, pool.id, amount, by_uid=caller.uid, now=self.clock.now()
        )

    def retire_pool(self, caller: Caller, ref: str) -> CreditPool:
        """Stop a pool paying from now on (what it already paid stays paid)."""
        self._require_admin(caller, "retire credit pools")
        pool = credit_store.get_pool(self.store, ref)
        if pool.retired_at is not None:
            return pool
        now = self.clock.now()
        return credit_store.update_pool(
            self.store, pool.id, {"retired_at": now}, kind="pool_retired", by_uid=caller.uid,
            now=now,
        )  # fmt: skip

    def set_project(self, caller: Caller, name: str, body: Mapping[str, Any]) -> Project:
        self._require_admin(caller, "change projects and budgets")
        _only(body, {"monthly_budget", "members", "add_members", "remove_members"})
        name = inputs.plain_name("name", name)
        current = credit_store.get_project(self.store.conn, name)
        budget = current.monthly_budget_micros if current else None
        if "monthly_budget" in body:
            raw = body["monthly_budget"]
            budget = None if raw is None else inputs.money_micros("monthly_budget", raw)
        members: list[int] | None = None
        if "members" in body:
            members = _uids("members", body["members"])
        if "add_members" in body or "remove_members" in body:
            now_in = set(members if members is not None else (current.members if current else ()))
            now_in |= set(_uids("add_members", body.get("add_members", [])))
            now_in -= set(_uids("remove_members", body.get("remove_members", [])))
            members = sorted(now_in)
        return credit_store.put_project(
            self.store,
            name=name,
            monthly_budget_micros=budget,
            members=members,
            by_uid=caller.uid,
            now=self.clock.now(),
        )

    def set_user_limit(self, caller: Caller, user: str, body: Mapping[str, Any]) -> UserLimit:
        self._require_admin(caller, "change user limits")
        _only(body, {"max_gpus", "max_hourly", "monthly_budget"})
        uid = _uids("user", [user])[0]
        current = credit_store.get_user_limit(self.store.conn, uid)
        max_gpus = current.max_gpus if current else None
        max_hourly = current.max_hourly_micros if current else None
        budget = current.monthly_budget_micros if current else None
        if "monthly_budget" in body:
            raw = body["monthly_budget"]
            budget = None if raw is None else inputs.money_micros("monthly_budget", raw)
        if "max_gpus" in body:
            max_gpus = inputs.optional_count("max_gpus", body["max_gpus"])
        if "max_hourly" in body:
            raw = body["max_hourly"]
            max_hourly = None if raw is None else inputs.money_micros("max_hourly", raw)
        return credit_store.put_user_limit(
            self.store,
            uid,
            max_gpus=max_gpus,
            max_hourly_micros=max_hourly,
            by_uid=caller.uid,
            now=self.clock.now(),
            monthly_budget_micros=budget,
        )

    def set_lab_budget(self, caller: Caller, body: Mapping[str, Any]) -> int | None:
        """Set (or clear, with null) the whole lab's monthly budget."""
        self._require_admin(caller, "change the lab's budget")
        _only(body, {"monthly_budget"})
        raw = _required_key(body, "monthly_budget")
        budget = None if raw is None else inputs.money_micros("monthly_budget", raw)
        credit_store.put_lab_budget(self.store, budget, by_uid=caller.uid, now=self.clock.now())
        return budget

    def override_job(self, caller: Caller, job_id: int, note: str = "") -> None:
        """Exempt one job from budgets and limits (admins only)."""
        self._require_admin(caller, "override budgets")
        credit_store.add_override(
            self.store, job_id, by_uid=caller.uid, note=note, now=self.clock.now()
        )
        self.bus.changed.set()  # a held job may start now


def _required(body: Mapping[str, Any], key: str) -> Any:
    if key not in body or body[key] is None:
        raise AccountingInputError(f"{key}: required", key)
    return body[key]


def _required_key(body: Mapping[str, Any], key: str) -> Any:
    if key not in body:
        raise AccountingInputError(f"{key}: required (null clears it)", key)
    return body[key]


def _only(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    known = set(allowed)
    for key in body:
        if key not in known:
            raise AccountingInputError(
                f"{key}: unknown field; allowed: {', '.join(sorted(known))}", key
            )


UID_MAX = 2**32 - 2  # uid_t; (uid_t)-1 means "no user"


def _uids(field: str, values: Any) -> list[int]:
    if not isinstance(values, list):
        raise AccountingInputError(f"{field}: expected a list of user names or uids", field)
    uids: list[int] = []
    for value in values:
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= UID_MAX:
            uids.append(value)
        elif isinstance(value, str):
            try:
                uids.append(pwd.getpwnam(value).pw_uid)
            except (KeyError, ValueError):  # ValueError: a NUL in the name
                raise AccountingInputError(f"{field}: no such user {value!r}", field) from None
        else:
            raise AccountingInputError(f"{field}: {value!r} is not a user name or uid", field)
    return uids
