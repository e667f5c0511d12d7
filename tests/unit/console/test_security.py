"""Sessions, CSRF tokens, redirects after login, the review page's bases."""

from __future__ import annotations

import time

import pytest

from eventrules.auth import Principal
from eventrules.console.publishing import Base, decode_bases, encode_bases, planned_against
from eventrules.console.security import safe_next
from eventrules.console.sessions import SessionStore
from eventrules.errors import InputError


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/workflows?q=a", "/workflows?q=a"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x", "/"),
        (None, "/"),
    ],
)
def test_only_local_paths_are_followed_after_login(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_sessions_expire_are_bounded_and_carry_their_own_csrf_token() -> None:
    store = SessionStore(ttl_seconds=0.05, max_sessions=2)
    first = store.create(Principal("a", "admin"))
    second = store.create(Principal("b", "read"))
    assert first.csrf_token != second.csrf_token
    assert first.csrf_matches(first.csrf_token)
    assert not first.csrf_matches(second.csrf_token)
    assert not first.csrf_matches(None)
    store.create(Principal("c", "read"))
    assert store.get(first.id) is None  # evicted: the oldest beyond max_sessions
    assert store.get(second.id) is second
    time.sleep(0.06)
    assert store.get(second.id) is None
    assert store.get("x" * 500) is None


def test_bases_round_trip_and_forged_ones_are_refused() -> None:
    bases = [Base("workflow", "a", 12, 3), Base("rule", "b", -1, 0)]
    assert decode_bases(encode_bases(bases)) == bases
    against = planned_against(bases)
    assert list(against) == [("workflow", "a")]
    assert against[("workflow", "a")].offset == 12
    for forged in [
        "",
        "{}",
        '[["secret", "a", 1, 1]]',
        '[["workflow", "../x", 1, 1]]',
        '[["workflow", "a", true, 1]]',
        "[" + ",".join(['["rule","a",1,1]'] * 101) + "]",
    ]:
        with pytest.raises(InputError):
            decode_bases(forged)
