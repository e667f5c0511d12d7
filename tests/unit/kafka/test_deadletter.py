"""Dead letters that do not fit the dead-letter topic are cut, not lost."""

from __future__ import annotations

import hashlib

from eventrules.kafka.deadletter import dead_letter_headers, fit_dead_letter


def _headers(original: list[tuple[str, bytes | None]] | None = None) -> list[tuple[str, bytes]]:
    return dead_letter_headers(
        reason="oversized",
        error="too big",
        topic="events",
        partition=0,
        offset=7,
        original_headers=original,
        error_class="PoisonEventError",
    )


def test_a_dead_letter_that_fits_is_kept_whole() -> None:
    letter = fit_dead_letter(b"k", b"v" * 100, _headers(), max_bytes=10_000)
    assert (letter.key, letter.value, letter.truncated) == (b"k", b"v" * 100, False)
    assert dict(letter.headers)["dlq.error.class"] == b"PoisonEventError"


def test_a_dead_letter_too_large_keeps_its_headers_and_a_truncated_value_with_size_and_hash() -> (
    None
):
    value = b"x" * 50_000
    letter = fit_dead_letter(b"key", value, _headers([("trace", b"t-1")]), max_bytes=20_000)
    headers = dict(letter.headers)
    assert letter.truncated
    assert headers["dlq.reason"] == b"oversized"
    assert headers["dlq.truncated"] == b"true"
    assert headers["dlq.original.size"] == b"50000"
    assert headers["dlq.original.sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert headers["trace"] == b"t-1"
    assert letter.value is not None
    assert value.startswith(letter.value)
    size = (
        len(letter.key or b"") + len(letter.value) + sum(len(n) + len(v) for n, v in letter.headers)
    )
    assert size <= 20_000


def test_huge_original_headers_and_key_are_dropped_or_cut_too() -> None:
    original = [(f"h{n}", b"y" * 1000) for n in range(40)]
    letter = fit_dead_letter(b"k" * 30_000, b"v", _headers(original), max_bytes=20_000)
    headers = dict(letter.headers)
    assert headers["dlq.original.headers.dropped"] == b"40"
    assert headers["dlq.original.key.size"] == b"30000"
    assert "h0" not in headers
    size = (
        len(letter.key or b"")
        + len(letter.value or b"")
        + sum(len(n) + len(v) for n, v in letter.headers)
    )
    assert size <= 20_000
