"""Administration writes: users (create with a PIN, deactivate, reactivate) and the override list. Each change is
one ``configuration.changed`` ledger entry in the same transaction as the change, naming who made it.

The override list lives in the ledger itself (the latest such entry is the list; ``ApiRuntime`` reads it at start)
so it needs no table of its own and every version of it is on the chain.
"""

from __future__ import annotations

from typing import Any

from controller.api.problems import ApiError
from controller.api.runtime import OVERRIDE_LIST_KIND, ApiRuntime
from controller.domain.transactions import EventType, LedgerRecord
from controller.domain.users import Role, User, temporary_expiry
from controller.store import repositories as repo
from controller.store.models import MedicationRow, UserRow


def _entry(runtime: ApiRuntime, actor_id: str, kind: str, **details: Any) -> LedgerRecord:
    return LedgerRecord(
        event_type=EventType.CONFIGURATION_CHANGED,
        actor_id=actor_id,
        reason_code=kind.replace(".", "_"),
        details={"kind": kind, "occurred_at": runtime.clock.now().isoformat(), **details},
    )


def create_user(
    runtime: ApiRuntime, actor_id: str, *, user_id: str, display_name: str, roles: frozenset[Role], pin: str,
    temporary: bool,
) -> dict[str, Any]:  # fmt: skip
    engine = runtime.require_engine()
    now = runtime.clock.now()
    user = User(user_id, display_name, roles, expires_at=temporary_expiry(now) if temporary else None)
    pin_hash = runtime.hasher.hash_pin(pin)  # refuses a weak PIN (auth.weak_pin) before anything is written
    with engine.db.write() as session:
        if session.get(UserRow, user_id) is not None:
            raise ApiError("admin.user_exists", f"user {user_id} already exists", user=user_id)
        repo.save_user(session, user, pin_hash=pin_hash, created_at=now)
        sealed = engine.ledger.append(
            session,
            _entry(runtime, actor_id, "user.created", user_id=user_id, roles=sorted(r.value for r in roles),
                   temporary=temporary),
        )  # fmt: skip
    return {"user_id": user_id, "expires_at": user.expires_at, "ledger_seq": sealed.seq}


def set_user_active(runtime: ApiRuntime, actor_id: str, user_id: str, *, active: bool) -> dict[str, Any]:
    engine = runtime.require_engine()
    if user_id == actor_id and not active:
        raise ApiError("policy.privilege_missing", "an administrator cannot deactivate their own account")
    with engine.db.write() as session:
        row = session.get(UserRow, user_id)
        if row is None:
            raise ApiError("admin.unknown_user", f"no user {user_id}", user=user_id)
        if row.active == active:
            return {"user_id": user_id, "active": active, "ledger_seq": None}
        row.active = active
        sealed = engine.ledger.append(
            session, _entry(runtime, actor_id, "user.activated" if active else "user.deactivated", user_id=user_id)
        )
    return {"user_id": user_id, "active": active, "ledger_seq": sealed.seq}


def set_override_list(runtime: ApiRuntime, actor_id: str, items: frozenset[str]) -> dict[str, Any]:
    engine = runtime.require_engine()
    with engine.db.write() as session:
        unknown = sorted(item for item in items if session.get(MedicationRow, item) is None)
        if unknown:
            raise ApiError("inventory.unknown_item", f"not in the formulary: {', '.join(unknown)}", items=unknown)
        before = sorted(engine.policy.override_items)
        sealed = engine.ledger.append(
            session, _entry(runtime, actor_id, OVERRIDE_LIST_KIND, items=sorted(items), previous=before)
        )
    runtime.set_override_list(items)
    return {"items": sorted(items), "ledger_seq": sealed.seq}
