import enum
import secrets
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.device import Device
    from app.models.user import User


class CredentialKind(enum.StrEnum):
    SESSION = "session"
    AUTH_TOKEN = "auth_token"
    API_KEY = "api_key"


def new_public_id():
    """128 random bits: what an access token names its credential by (``sid``), so a
    forged token cannot guess one, as it could a sequential database id."""
    return secrets.token_urlsafe(16)


class Credential(Model):
    """A bearer secret: a session, an auth token (bound to one device of its user) or an
    API key (a backend service's, with ``name`` and ``scopes``).

    Only the secret's keyed digest is stored: the secret is shown once, when it is made,
    and then only to a caller who presents it (``app.web.auth.Principal.secret``).
    """

    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[CredentialKind] = mapped_column(
        Enum(CredentialKind, native_enum=False, length=16,
             values_callable=lambda kinds: [k.value for k in kinds])
    )
    secret_digest: Mapped[str] = mapped_column(String(64), unique=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str | None] = mapped_column(String(100), unique=True)
    scopes: Mapped[str | None] = mapped_column(String(255))  # space-separated
    is_cookie_based: Mapped[bool] = mapped_column(Boolean, default=False)
    # An API key's receipts (app/push/receipts.py): where they go, the sealed whsec_ secret
    # they are signed with, and since when they are off (the callback answered 410).
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    callback_secret: Mapped[str | None] = mapped_column(Text)
    callback_off_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Written at most once per ``app.resources.credentials.USE_RESOLUTION``, not per request.
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    user: Mapped["User | None"] = relationship()
    device: Mapped["Device | None"] = relationship(foreign_keys=[device_id])

    @property
    def scope_set(self):
        return frozenset((self.scopes or "").split())
