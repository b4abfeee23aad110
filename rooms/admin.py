"""The admin's bearer token: configured, or generated on first start and kept (hashed).

Only a SHA-256 digest of a generated token is stored, so it is shown once, when it is made.
Comparisons are on digests, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from rooms.models import SettingEntry

__all__ = ["ADMIN_TOKEN_KEY", "AdminAuth", "ensure_admin_token"]

ADMIN_TOKEN_KEY = "admin_token_sha256"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class AdminAuth:
    """Checks a presented bearer token against the admin token's digest."""

    digest: bytes

    @classmethod
    def for_token(cls, token: str) -> AdminAuth:
        return cls(_digest(token))

    def verify(self, presented: str) -> bool:
        return hmac.compare_digest(_digest(presented), self.digest)


def ensure_admin_token(
    engine: Engine,
    configured: str | None,
    *,
    generate: Callable[[], str] = lambda: secrets.token_urlsafe(32),
) -> tuple[str | None, AdminAuth]:
    """The admin token's verifier, plus the token itself when it was just generated.

    ``configured`` (``GATEWAY_ADMIN_TOKEN``) wins and is not stored. Otherwise the stored digest
    is used; on the very first start a token is generated, its digest stored, and the token
    returned so the caller prints it once. Later starts return ``(None, auth)``.
    """
    if configured is not None:
        return None, AdminAuth.for_token(configured)
    with Session(engine) as session:
        entry = session.get(SettingEntry, ADMIN_TOKEN_KEY)
        if entry is not None:
            return None, AdminAuth(bytes.fromhex(entry.value))
        token = generate()
        auth = AdminAuth.for_token(token)
        session.add(SettingEntry(key=ADMIN_TOKEN_KEY, value=auth.digest.hex()))
        try:
            session.commit()
        except IntegrityError:  # another process generated it first: use theirs
            session.rollback()
            entry = session.get(SettingEntry, ADMIN_TOKEN_KEY)
            assert entry is not None
            return None, AdminAuth(bytes.fromhex(entry.value))
    return token, auth
