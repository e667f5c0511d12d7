"""Console logins: a session per successful bearer-token login, held in memory, each with its
own CSRF token. A restart logs everyone out, which is the safe direction."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from eventrules.auth import Principal

__all__ = ["Session", "SessionStore"]


@dataclass(frozen=True)
class Session:
    id: str
    principal: Principal
    csrf_token: str
    expires: float

    def csrf_matches(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(
            self.csrf_token.encode(), (presented or "").encode()
        )


class SessionStore:
    """Sessions by id, oldest evicted beyond ``max_sessions`` (a flood of logins cannot grow
    memory without bound)."""

    def __init__(self, *, ttl_seconds: float, max_sessions: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, principal: Principal) -> Session:
        session = Session(
            secrets.token_urlsafe(32),
            principal,
            secrets.token_urlsafe(32),
            time.monotonic() + self.ttl,
        )
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > 128:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires < time.monotonic():
                del self._sessions[session_id]
                return None
            return session

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
