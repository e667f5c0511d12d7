"""The changelog of the state stores: one compacted topic, partition for partition with the
state stream's input topic, and the restore that rebuilds a store from it.

A changelog record is keyed by the state key; its value is the entry and its due time (JSON),
or null for a delete; the header ``eventrules-input-offset`` holds the offset of the input
record whose processing wrote it. A restore applies only the records of inputs the state
stream's group has committed: a record of an input that will be processed again (the previous
owner crashed before committing it) is skipped, as Quix Streams does, and afterwards the
restored value of each skipped key is written again, so a later restore that sees the input as
committed cannot resurrect the skipped value.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, cast

import orjson
from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from eventrules.errors import KafkaError
from eventrules.kafka.clients import consumer_config, private_group, watermarks
from eventrules.runtime.state.store import PartitionStore, encode_entry

__all__ = [
    "INPUT_OFFSET_HEADER",
    "Restored",
    "changelog_headers",
    "input_offset",
    "restore_partition",
]

log = logging.getLogger(__name__)

INPUT_OFFSET_HEADER = "eventrules-input-offset"
_CHUNK = 10_000


def changelog_headers(offset: int) -> list[tuple[str, bytes | None]]:
    return [(INPUT_OFFSET_HEADER, str(offset).encode())]


def input_offset(message: Message) -> int | None:
    """The input offset a changelog record was written for (None when it does not say)."""
    headers = cast(list[tuple[str, bytes | None]], message.headers() or [])
    for name, value in headers:
        if name == INPUT_OFFSET_HEADER and value is not None:
            try:
                return int(value)
            except ValueError:
                return None
    return None


@dataclass(frozen=True)
class Restored:
    partition: int
    records: int  # changelog records read
    skipped: int  # records of uncommitted inputs
    start: int  # the changelog offset the restore started from
    end: int
    seconds: float


def _decode(raw: bytes) -> float | None:
    due = orjson.loads(raw).get("due")
    return float(due) if due is not None else None


def restore_partition(
    store: PartitionStore,
    client_config: dict[str, Any],
    changelog: str,
    *,
    committed_input: int,
    repair: Producer | None,
    timeout: float = 300.0,
) -> Restored:
    """Bring ``store`` up to the end of its changelog partition, reading only what its database
    does not reflect yet. ``committed_input`` is the state stream's committed offset for the
    partition; ``repair`` writes the corrections for skipped keys (see the module docstring)."""
    started = time.monotonic()
    partition = store.partition
    consumer = Consumer(
        consumer_config(
            client_config,
            private_group("state-restore"),
            extra={"fetch.max.bytes": 64 * 1024 * 1024, "enable.partition.eof": True},
        )
    )
    try:
        low, high = watermarks(consumer, TopicPartition(changelog, partition), timeout=30.0)
        start = store.changelog_position()
        if start is None or start < low or start > high:
            # nothing local, compacted past us, or a changelog recreated since: from scratch
            if start is not None:
                log.warning(
                    "%s[%d]: local state at %d outside [%d, %d]; restoring it whole",
                    changelog,
                    partition,
                    start,
                    low,
                    high,
                )
            store.clear()
            start = low
        records, skipped_keys, skipped = _read(
            consumer,
            store,
            changelog=changelog,
            span=(start, high),
            committed_input=committed_input,
            timeout=timeout,
        )
        store.save_position(high)
    except KafkaException as exc:
        raise KafkaError(f"restoring {changelog}[{partition}]: {exc.args[0]}") from None
    finally:
        consumer.close()
    if skipped_keys and repair is not None:
        for key in sorted(skipped_keys):
            value = store.get(key)
            raw = encode_entry(value, store.due_of(key)) if value is not None else None
            repair.produce(
                changelog,
                key=key.encode(),
                value=raw,
                partition=partition,
                headers=cast(Any, changelog_headers(committed_input - 1)),
            )
        remaining = repair.flush(30)
        if remaining:
            raise KafkaError(f"{changelog}[{partition}]: {remaining} correction(s) undelivered")
    restored = Restored(partition, records, skipped, start, high, time.monotonic() - started)
    log.info(
        "%s[%d]: restored %d record(s) (%d of uncommitted inputs skipped) in %.2fs",
        changelog,
        partition,
        records,
        skipped,
        restored.seconds,
    )
    return restored


def _read(
    consumer: Consumer,
    store: PartitionStore,
    *,
    changelog: str,
    span: tuple[int, int],
    committed_input: int,
    timeout: float,
) -> tuple[int, set[str], int]:
    """Apply the changelog records in ``span``; returns (read, keys skipped, records skipped)."""
    start, high = span
    partition = store.partition
    if start >= high:
        return 0, set(), 0
    consumer.assign([TopicPartition(changelog, partition, start)])
    deadline = time.monotonic() + timeout
    records = skipped = 0
    skipped_keys: set[str] = set()
    rows: list[tuple[str, bytes | None, float | None]] = []
    position = start
    while position < high:
        if time.monotonic() > deadline:
            raise KafkaError(f"timed out restoring {changelog}[{partition}] at {position}/{high}")
        for message in consumer.consume(_CHUNK, 0.1):
            error = message.error()
            if error is not None:
                if error.code() != error._PARTITION_EOF:
                    raise KafkaError(f"restoring {changelog}[{partition}]: {error}")
                continue
            records += 1
            key = (message.key() or b"").decode(errors="replace")
            source = input_offset(message)
            if source is not None and source >= committed_input:
                skipped += 1
                skipped_keys.add(key)
                continue
            skipped_keys.discard(key)
            raw = message.value()
            rows.append((key, raw, _decode(raw) if raw is not None else None))
        if rows:
            store.restore_rows(rows)
            rows = []
        # positions, not counts: transaction markers take offsets too
        (tp,) = consumer.position([TopicPartition(changelog, partition)])
        position = max(position, tp.offset)
    return records, skipped_keys, skipped
