"""Who is acting. Services take an ``Actor`` argument instead of reading ``flask.g``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from market.accounts.models import User


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    org_id: int | None
    #: The organization's kind: department, buyer, operator, regulator or subject.
    role: str | None
    org_status: str | None = None
    #: For non-user actors: "cli", "system", "stripe", "anonymous".
    label: str | None = None

    @classmethod
    def from_user(cls, user: User) -> Actor:
        org = user.organization
        return cls(user.id, org.id, org.kind, org.status)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(None, None, None, None, label)

    @property
    def is_user(self) -> bool:
        return self.user_id is not None

    def audit_dict(self) -> dict[str, Any]:
        if self.user_id is None:
            return {"system": self.label or "anonymous"}
        return {"user_id": self.user_id, "org_id": self.org_id, "role": self.role}


ANONYMOUS = Actor(None, None, None, None, "anonymous")
