"""The audit trail: every operator action with who and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from .clock import utcnow
from .db.models import AuditLog


def record_action(session: Session, actor: str, action: str, subject: str,
                  **details: Any) -> None:
    session.add(AuditLog(actor=actor, action=action, subject=subject, details=details,
                         at=utcnow()))
