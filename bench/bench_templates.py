"""Action template rendering: the plain ``{{ name }}`` fast path and the bounded jinja sandbox.

Three templates, each rendered N times through ``TemplatedParams.render`` (what a workflow
run does per action), against a baseline measured in the same run: the same text built by a
hand-written f-string from the same context. The sandbox's bounds (output counted as it is
produced, loop iterations, the time budget, size checks on every hook) cost something on the
jinja path; the fast path only gains a running length check.

* ``plain``:   ``Order {{ order_id }} for {{ email }} is {{ status }}`` (the fast path)
* ``filters``: ``{{ name | title }}, your total is {{ '%.2f' | format(total) }}`` (jinja)
* ``loop``:    ``{% for item in items %}{{ loop.index }}. {{ item.sku }} x{{ item.qty }}
  {% endfor %}`` over 10 items (jinja, every iteration counted)

    .venv/bin/python bench/bench_templates.py           # full run: medians of 5
    .venv/bin/python bench/bench_templates.py --quick   # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from eventrules.workflows.templating import compile_params

CONTEXT: dict[str, Any] = {
    "order_id": "o-1001",
    "email": "ada@example.com",
    "status": "shipped",
    "name": "ada lovelace",
    "total": 129.9,
    "items": [{"sku": f"sku-{i}", "qty": i} for i in range(10)],
}
TEMPLATES: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "plain": (
        "Order {{ order_id }} for {{ email }} is {{ status }}",
        lambda c: f"Order {c['order_id']} for {c['email']} is {c['status']}",
    ),
    "filters": (
        "{{ name | title }}, your total is {{ '%.2f' | format(total) }}",
        lambda c: f"{c['name'].title()}, your total is {c['total']:.2f}",
    ),
    "loop": (
        "{% for item in items %}{{ loop.index }}. {{ item.sku }} x{{ item.qty }}\n{% endfor %}",
        lambda c: "".join(
            f"{i}. {item['sku']} x{item['qty']}\n" for i, item in enumerate(c["items"], 1)
        ),
    ),
}


def rate(function: Callable[[], Any], count: int) -> float:
    """Calls per second of this thread's CPU time: on a shared machine, wall time mostly
    measures the other processes."""
    started = time.thread_time()
    for _ in range(count):
        function()
    return count / (time.thread_time() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--renders", type=int, default=50_000)
    options = parser.parse_args()
    count = 2_000 if options.quick else options.renders
    repeats = 1 if options.quick else 5
    print(f"{count:,} renders per template, median of {repeats}, per CPU second")
    print(f"{'template':<10}{'renders/s':>14}{'f-string baseline':>20}{'ratio':>8}")
    for name, (source, baseline) in TEMPLATES.items():
        params = compile_params({"body": source}, untemplated=frozenset(), path="bench")
        rendered, missing = params.render(CONTEXT)
        if rendered["body"] != baseline(CONTEXT) or missing:
            raise SystemExit(f"{name}: rendered {rendered['body']!r}, missing {missing}")
        ours = statistics.median(
            rate(lambda p=params: p.render(CONTEXT), count) for _ in range(repeats)
        )
        theirs = statistics.median(
            rate(lambda b=baseline: b(CONTEXT), count) for _ in range(repeats)
        )
        print(f"{name:<10}{ours:>14,.0f}{theirs:>20,.0f}{ours / theirs:>8.2f}")


if __name__ == "__main__":
    main()
