"""HTTP latency of POST /rules/evaluate at a paced 500 requests/s, with GET /healthz as the floor.

A 100-rule pricing table on the config topic: the seed's 4 rule templates (3 pricing, 1
validation) plus the first 97 pricing rules of W2 (bench/bench_rules.py), read by one worker.
Requests are ``{"rule_type": "pricing", "facts": {...}, "evaluation_time": ...}`` with W2's
facts (plus ``user.orderCount``), sent open-loop by one aiohttp client session at a fixed rate
(``--client httpx`` for httpx.AsyncClient): each request starts at its slot whether or not
earlier ones have answered. Latency is measured from the request's start to its response.
The baseline, measured in the same run against the same worker with the same client, is GET
/healthz (no body, no work): what HTTP costs here. For comparison, the same requests evaluated
in-process through the handler's own function (``evaluate_request``, JSON in and out) give
evaluations/s on one core; a sample of HTTP decisions is checked against the in-process ones.

    .venv/bin/python bench/bench_rules_http.py            # full run, about a minute
    .venv/bin/python bench/bench_rules_http.py --quick    # smoke run
    .venv/bin/python bench/bench_rules_http.py --bootstrap 127.0.0.1:39092

Without ``--bootstrap`` the script runs its own broker (see bench/worker_harness.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import yaml

from bench_rules import make_facts, make_rules
from eventrules import RulesEngine, parse_rule
from eventrules.runtime.rules_service import evaluate_request
from worker_harness import (
    REPO,
    create_topics,
    definition_records,
    kafka,
    latency_line,
    new_prefix,
    publish,
    running_worker,
)

SEED = 20260109
GENERATED = 97  # + the 3 pricing templates = a 100-rule pricing table
EVALUATION_TIME = "2026-01-10T14:30:00+00:00"  # a Saturday inside weekend-special's window
WARMUP_SECONDS = 2.0


def rule_definitions(rng: random.Random) -> list[dict[str, Any]]:
    templates = [
        yaml.safe_load(path.read_text())
        for path in sorted((REPO / "config" / "templates" / "rules").glob("*.yaml"))
    ]
    generated = [rule | {"version": 1} for rule in make_rules(rng)[:GENERATED]]
    return templates + generated


def request_bodies(count: int, rng: random.Random) -> list[bytes]:
    bodies = []
    for facts in make_facts(count, rng):
        facts["user"] = {"orderCount": rng.randint(0, 3)}
        request = {"rule_type": "pricing", "facts": facts, "evaluation_time": EVALUATION_TIME}
        bodies.append(orjson.dumps(request))
    return bodies


def in_process(definitions: list[dict[str, Any]], bodies: list[bytes], repeats: int) -> float:
    """Evaluations/s of the HTTP handler's work without HTTP: JSON in, decision, JSON out."""
    engine = RulesEngine([parse_rule(raw) for raw in definitions], timezone=UTC)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for body in bodies:
            orjson.dumps(evaluate_request(engine, orjson.loads(body)))
        best = min(best, time.perf_counter() - start)
    return len(bodies) / best


def outcome_of(decision: dict[str, Any]) -> tuple[Any, ...]:
    matched = tuple((m["rule_id"], m["applied"]) for m in decision["matched"])
    return matched, orjson.dumps(decision["outcome"], option=orjson.OPT_SORT_KEYS)


# One request: (method, url, body) -> HTTP status.
Send = Callable[[str, str, bytes | None], Awaitable[int]]


@dataclass
class Paced:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    late: list[float] = field(default_factory=list)  # how far behind its slot each start was
    sent_rate: float = 0.0


async def paced(
    send: Send,
    method: str,
    url: str,
    bodies: list[bytes | None],
    rate: float,
    *,
    timed: bool = True,
) -> Paced:
    """Open loop: request i starts at begin + i/rate, whatever the earlier ones are doing."""
    result = Paced()

    async def one(body: bytes | None) -> None:
        start = time.perf_counter()
        try:
            status = await send(method, url, body)
        except (httpx.HTTPError, aiohttp.ClientError, TimeoutError) as exc:
            result.errors[type(exc).__name__] += 1
            return
        elapsed = time.perf_counter() - start
        if status != 200:
            result.errors[f"HTTP {status}"] += 1
        elif timed:
            result.latencies.append(elapsed)

    tasks = []
    begin = time.perf_counter()
    for i, body in enumerate(bodies):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        result.late.append(max(0.0, -delay))
        tasks.append(asyncio.create_task(one(body)))
    span = time.perf_counter() - begin
    await asyncio.gather(*tasks)
    result.sent_rate = (len(bodies) - 1) / span if span > 0 else float("nan")
    return result


def report(label: str, run: Paced) -> None:
    late = sorted(run.late)
    errors = ", ".join(f"{n} {kind}" for kind, n in run.errors.items()) or "0"
    print(
        latency_line(label, run.latencies) + f"   ({run.sent_rate:,.0f}/s sent, errors: {errors}, "
        f"p99 start lag {late[int(0.99 * (len(late) - 1))] * 1000:.1f} ms)",
        flush=True,
    )


@contextlib.asynccontextmanager
async def http_client(kind: str) -> AsyncIterator[Send]:
    """aiohttp by default: httpx 0.28's AsyncClient cannot keep 500 concurrent-ish requests/s
    here (its pool queues them; encode/httpx#3215), which would time the client, not us."""
    headers = {"content-type": "application/json"}
    if kind == "httpx":
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:

            async def send_httpx(method: str, url: str, body: bytes | None) -> int:
                response = await client.request(method, url, content=body, headers=headers)
                return response.status_code

            yield send_httpx
        return
    timeout = aiohttp.ClientTimeout(total=10.0)
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def send_aiohttp(method: str, url: str, body: bytes | None) -> int:
            async with session.request(method, url, data=body, headers=headers) as response:
                await response.read()
                return response.status

        yield send_aiohttp


async def drive(
    url: str, bodies: list[bytes], rate: float, seconds: float, client: str
) -> list[bytes]:
    """Warm up, then the healthz floor, then /rules/evaluate; returns decisions to check."""
    count = int(rate * seconds)
    warm = int(rate * WARMUP_SECONDS)
    evaluate = f"{url}/rules/evaluate"
    async with http_client(client) as send:
        await paced(send, "POST", evaluate, list(bodies[:warm]), rate, timed=False)
        print(f"{count:,} requests per endpoint at {rate:,.0f}/s ({seconds:.0f}s each), {client}:")
        floor = await paced(send, "GET", f"{url}/healthz", [None] * count, rate)
        report("GET /healthz (baseline)", floor)
        timed_bodies: list[bytes | None] = [bodies[(warm + i) % len(bodies)] for i in range(count)]
        report("POST /rules/evaluate", await paced(send, "POST", evaluate, timed_bodies, rate))
    async with httpx.AsyncClient() as checker:
        return [(await checker.post(evaluate, content=body)).content for body in bodies[:50]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="an existing cluster; default: start a broker")
    parser.add_argument("--quick", action="store_true", help="2 s per endpoint, a smoke run")
    parser.add_argument("--rate", type=float, default=500.0, help="requests/s")
    parser.add_argument("--seconds", type=float, help="length of each timed run (10)")
    parser.add_argument("--client", choices=["aiohttp", "httpx"], default="aiohttp")
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 10.0)
    rng = random.Random(SEED)
    definitions = rule_definitions(rng)
    bodies = request_bodies(int(args.rate * (seconds + WARMUP_SECONDS)), rng)
    began = time.perf_counter()

    rate = in_process(definitions, bodies, 1 if args.quick else 3)
    pricing = sum(1 for rule in definitions if rule["rule_type"] == "pricing")
    print(f"{len(definitions)} rules ({pricing} pricing); {len(bodies):,} distinct requests")
    print(
        f"  in-process evaluate_request  {rate:>10,.0f} evaluations/s "
        "(one core, JSON in and out, best of runs)"
    )

    with kafka(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        prefix = new_prefix("rules")
        create_topics(bootstrap, prefix)
        publish(bootstrap, prefix + "config", definition_records(definitions))
        with running_worker(bootstrap, prefix, Path(tmp)) as worker:
            body = worker.wait_ready()
            if body["rules"] != len(definitions):
                raise SystemExit(f"the worker loaded {body['rules']} of {len(definitions)} rules")
            sample = asyncio.run(drive(worker.url, bodies, args.rate, seconds, args.client))

    engine = RulesEngine([parse_rule(raw) for raw in definitions], timezone=UTC)
    expected = [outcome_of(evaluate_request(engine, orjson.loads(b))) for b in bodies[:50]]
    got = [outcome_of(orjson.loads(answer)) for answer in sample]
    if got != expected:
        raise SystemExit("HTTP decisions differ from in-process ones")
    matched = sum(len(m) for m, _ in expected)
    print(f"  50 HTTP decisions equal the in-process ones ({matched} rule matches among them)")
    print(f"done in {time.perf_counter() - began:.0f}s")


if __name__ == "__main__":
    main()
