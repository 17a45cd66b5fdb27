"""The audit trail: every operator action with who and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.db.models import AuditLog


def record_action(session: Session, actor: str, action: str, subject: str,
                  **details: Any) -> None:
    session.add(AuditLog(actor=actor, action=action, subject=subject, details=details,
                         at=utcnow()))


SETTINGS_CHANGED = "program.settings_changed"
CONFIG_ACTOR = "config"


def record_settings_changes(hub: Any) -> list[str]:
    """At start-up, audit every program whose settings differ from the ones last recorded.

    Rates, thresholds and hold days come from the config file, not from a form, so a change is
    only seen when a process starts with the new file: each program's settings hash is compared
    with the last ``program.settings_changed`` row for it, and a new row (actor ``config``, the
    old and new hash and the new settings) is written when they differ, including the first time
    a program is seen. Returns the names of the programs recorded."""
    import dataclasses

    from sqlalchemy import select

    changed = []
    with hub.transaction() as session:
        for name, program in sorted(hub.programs.items()):
            last = session.scalars(select(AuditLog).where(
                AuditLog.action == SETTINGS_CHANGED, AuditLog.subject == name)
                .order_by(AuditLog.id.desc()).limit(1)).first()
            old = (last.details or {}).get("new_hash") if last is not None else None
            if old == program.settings_hash:
                continue
            settings = {k: str(v) for k, v in dataclasses.asdict(program.settings).items()}
            record_action(session, CONFIG_ACTOR, SETTINGS_CHANGED, name, old_hash=old,
                          new_hash=program.settings_hash, plugin=program.plugin,
                          settings=settings)
            changed.append(name)
    return changed
