"""Signed-in sessions, in this process's memory only: a random token (the cookie) -> the key.

A key signs in when its sha256 is one a deployment's serving revision accepts or the home's
default; digests are compared with `hmac.compare_digest`. The key is kept for the session's life
because the try-it form calls the endpoint with it; it is never written anywhere, and a restart
of the dashboard signs everybody out.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

from conduit.keys import HOME_KEY_SETTING
from conduit.store import Store

COOKIE = "conduit_dashboard_session"
IDLE_S = 12 * 3600  # a session unused this long is forgotten


@dataclass
class Session:
    api_key: str
    last_used: float


def accepted_hashes(store: Store) -> list[str]:
    """The key hashes that sign in: every serving revision's and the home default's."""
    serving = (store.serving(record.name) for record in store.deployments())
    found = [revision.key_sha256 for revision in serving if revision is not None]
    home = store.setting(HOME_KEY_SETTING)
    return found + ([home] if home else [])


def key_matches(api_key: str, hashes: Iterable[str]) -> bool:
    """Whether the key's sha256 is one of `hashes`, every one compared in constant time."""
    digest = hashlib.sha256(api_key.encode("utf-8")).hexdigest()
    matches = [hmac.compare_digest(digest, expected) for expected in hashes]
    return any(matches)


class Sessions:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def sign_in(self, api_key: str, store: Store) -> Optional[str]:
        """A new session's token, or None for a key that does not sign in."""
        if not api_key or not key_matches(api_key, accepted_hashes(store)):
            return None
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = Session(api_key, time.monotonic())
        return token

    def get(self, token: Optional[str]) -> Optional[Session]:
        """The live session of `token`, its idle clock restarted; None when there is none."""
        with self._lock:
            self._forget_idle()
            session = self._sessions.get(token or "")
            if session is not None:
                session.last_used = time.monotonic()
            return session

    def sign_out(self, token: Optional[str]) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def _forget_idle(self) -> None:
        cutoff = time.monotonic() - IDLE_S
        for token in [t for t, s in self._sessions.items() if s.last_used < cutoff]:
            del self._sessions[token]
