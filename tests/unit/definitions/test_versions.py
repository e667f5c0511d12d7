"""High-water marks: deletes keep them, re-creations start above them, absurd versions fail."""

from __future__ import annotations

from eventrules.definitions.versions import MAX_VERSION, VersionMarks

A = ("workflow", "a")


def _reason(refusal: tuple[str, str] | None) -> str | None:
    return refusal[0] if refusal is not None else None


def test_a_tombstone_does_not_reset_the_mark() -> None:
    marks = VersionMarks()
    assert marks.refuse_upsert(A, 1) is None
    marks.installed(A, 1)
    marks.installed(A, 2)
    assert marks.refuse_delete(A, 2) is None
    marks.deleted(A, 2)
    assert _reason(marks.refuse_upsert(A, 1)) == "stale_version"
    assert _reason(marks.refuse_upsert(A, 2)) == "stale_version"  # re-created at the mark
    assert marks.refuse_upsert(A, 3) is None
    assert _reason(marks.refuse_delete(A, 1)) == "stale_version"  # an old delete replayed


def test_the_held_version_may_be_replayed_but_nothing_below() -> None:
    marks = VersionMarks()
    marks.installed(A, 5)
    assert marks.refuse_upsert(A, 5) is None  # a republish of the same record
    assert _reason(marks.refuse_upsert(A, 4)) == "stale_version"


def test_absurd_versions_are_refused() -> None:
    marks = VersionMarks(max_step=1000)
    assert _reason(marks.refuse_upsert(A, 2**63 - 1)) == "version_out_of_range"
    assert _reason(marks.refuse_upsert(A, MAX_VERSION + 1)) == "version_out_of_range"
    assert _reason(marks.refuse_upsert(A, 1001)) == "version_out_of_range"
    assert marks.refuse_upsert(A, 1000) is None
    marks.installed(A, 1000)
    assert marks.refuse_upsert(A, 2000) is None
    assert _reason(marks.refuse_delete(A, 2**62)) == "version_out_of_range"
    assert marks.refuse_delete(A, None) is None  # unversioned deletes are the unsigned mode's
