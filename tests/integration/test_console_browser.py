"""The console end to end in a real browser (Debian's chromium driven by Playwright) on a real
broker, with a real worker process: what an operator does, click by click.

With ``EVENTRULES_CONSOLE_SCREENSHOTS=<dir>`` every page visited is saved there as a PNG
(``scripts/console-screenshots.sh`` writes docs/console/ this way).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import expect, sync_playwright

from eventrules.auth import hash_token, new_token
from eventrules.ops.executions import read_executions
from eventrules.settings import Settings
from integration.harness import (
    ConsoleProcess,
    Deployment,
    WorkerProcess,
    cloudevent,
    wait_until,
)

pytestmark = pytest.mark.integration

# a loaded CI machine answers slowly; the default 5 s of expect() is for fast desktops
expect.set_options(timeout=30_000)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = os.environ.get("EVENTRULES_CONSOLE_SCREENSHOTS")
# SHA-256 of the empty string: Playwright's full-page screenshot applies an empty inline style,
# which the CSP reports (seen only when screenshots are taken); any other violation counts
_EMPTY_STYLE = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


class _Hook(BaseHTTPRequestHandler):
    """A webhook receiver that fails (503) until the test fixes it."""

    broken = True
    calls: list[str] = []  # noqa: RUF012 - shared by the server's handler instances on purpose

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).calls.append(self.path)
        self.send_response(503 if type(self).broken else 200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def hook() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def tokens() -> dict[str, str]:
    return {"admin": new_token(), "read": new_token()}


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    tokens: dict[str, str],
    hook: ThreadingHTTPServer,
) -> Iterator[dict[str, Any]]:
    """A deployment with a worker and a console (admin and read tokens) on the session broker."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap.sh installs Debian's chromium")
    tmp = tmp_path_factory.mktemp("console")
    deployment = Deployment(
        kafka_bootstrap,
        tmp,
        extra_env={"EVENTRULES_WEBHOOK_ALLOW_LIST": '["127.0.0.1/32"]'},
    )
    # a sentinel workflow: every order.created runs it, so an event's processing is observable
    deployment.publish_definition(
        {
            "kind": "workflow",
            "id": "all-orders",
            "name": "All orders",
            "trigger": "order.created",
            "created_by": "tests",
            "actions": [{"type": "add_tag", "user_id": "{{userId}}", "tag": "buyer"}],
        }
    )
    worker = deployment.start_worker()
    worker.wait_ready()
    entries = [
        {"name": "alice", "sha256": hash_token(tokens["admin"]), "scope": "admin"},
        {"name": "rita", "sha256": hash_token(tokens["read"]), "scope": "read"},
    ]
    console = ConsoleProcess(
        env={
            **deployment.env(),
            "EVENTRULES_HTTP_TOKENS": json.dumps(entries),
            "EVENTRULES_CONSOLE_INDEX_PATH": str(tmp / "index.sqlite3"),
            "EVENTRULES_CONSOLE_WORKER_URLS": json.dumps([worker.url]),
        },
        log_path=tmp / "console.log",
    ).start()
    try:
        console.wait_ready()
        yield {"deployment": deployment, "worker": worker, "console": console, "hook": hook}
    finally:
        console.stop()
        deployment.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _context(browser: Any) -> Any:
    # a new context is a fresh profile: no cookies, no cache
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(30_000)
    return context


def settle(page: Any) -> None:
    """Wait until the page's own requests (htmx's lazy loads) are done, so a late swap cannot
    land on fields the test is filling."""
    page.wait_for_load_state("networkidle")
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)
    if page.locator("#recent-events").count():
        expect(page.locator("#recent-events")).not_to_contain_text("loading")


def act(page: Any, selector: str) -> None:
    """Click what posts the form, then wait for its answer to be in place."""
    page.click(selector)
    settle(page)


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        settle(page)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


ERRORS: dict[int, list[str]] = {}


def page_errors(page: Any) -> list[str]:
    """Script errors and console errors (a CSP violation among them) the page reported."""
    return [error for error in ERRORS.get(id(page), []) if _EMPTY_STYLE not in error]


def login(browser: Any, url: str, token: str, name: str | None = None) -> Any:
    page = _context(browser).new_page()
    errors = ERRORS.setdefault(id(page), [])
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            # the browser logs every 4xx answer; a validation page answering 400 is no fault
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.goto(url + "/workflows")
    expect(page).to_have_url(re.compile(r"/login\?next=/workflows"))
    if name:
        shot(page, name)
    page.fill("#token", token)
    page.click("button[type=submit]")
    expect(page).to_have_url(url + "/workflows")
    settle(page)
    return page


def _loaded(worker: WorkerProcess, enabled: int, disabled: int = 0) -> None:
    wait_until(
        lambda: (
            worker.metric("eventrules_definitions_loaded", kind="workflow", enabled="true")
            == enabled
            and worker.metric("eventrules_definitions_loaded", kind="workflow", enabled="false")
            == disabled
        ),
        timeout=60,
        what=f"the worker to load {enabled} enabled and {disabled} disabled workflows",
    )


def _until_row(page: Any, url: str, text: str, timeout: float = 60.0) -> None:
    """Reload a history page until a row with ``text`` shows (the index follows the topic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.goto(url)
        if page.locator("[data-testid=executions]").get_by_text(text).count():
            return
        time.sleep(0.5)
    raise AssertionError(f"no execution row with {text!r} at {url}")


def test_admin_builds_tests_publishes_and_disables_a_workflow(
    stack: dict[str, Any], browser: Any, tokens: dict[str, str]
) -> None:
    url = stack["console"].url
    page = login(browser, url, tokens["admin"], name="login")
    shot(page, "workflows-empty")
    _create_and_test_in_the_editor(page, url)
    _see_it_run(page, url, stack["deployment"], stack["worker"])
    _disable_and_see_it_stop(page, url, stack["deployment"], stack["worker"])
    assert page_errors(page) == [], "\n".join(page_errors(page))


def _create_and_test_in_the_editor(page: Any, url: str) -> None:
    # create in the editor: trigger, a condition from the builder, priority, an action
    page.click("[data-testid=new-workflow]")
    expect(page).to_have_url(url + "/workflows/new")
    settle(page)
    page.fill("[data-testid=field-id]", "big-orders")
    page.fill("[data-testid=field-name]", "Big orders")
    page.select_option("[data-testid=field-trigger]", "order.created")
    page.fill("[data-testid=field-priority]", "8")
    act(page, "[data-testid=add-first-condition]")
    page.fill("input[name='c.field']", "total")
    page.select_option("select[name='c.operator']", "gt")
    page.fill("input[name='c.value']", "100")
    # AND it with "email exists" and NOT(country in ["XX"])
    act(page, "button[value='cond-root:all']")
    act(page, "[data-testid='add-condition-c']")
    page.fill("input[name='c.1.field']", "email")
    page.select_option("select[name='c.1.operator']", "exists")
    act(page, "button[value='cond-add-not:c']")
    page.fill("input[name='c.2.0.field']", "country")
    page.select_option("select[name='c.2.0.operator']", "in")
    page.fill("input[name='c.2.0.value']", '["XX"]')
    page.select_option("select[name='a.0.type']", "create_task")
    act(page, "text=apply type")
    expect(page.locator("input[name='a.0.p.title']")).to_be_visible()
    expect(page.locator("input[name='c.0.value']")).to_have_value("100")
    expect(page.locator("input[name='c.2.0.value']")).to_have_value('["XX"]')
    # a required parameter left empty: the error shows at its field, nothing is published
    act(page, "[data-testid=review]")
    title_field = page.locator(".param.has-error", has=page.locator("[name='a.0.p.title']"))
    expect(title_field).to_contain_text("Field required")
    page.fill("input[name='a.0.p.title']", "Call {{email}} about {{orderId}}")
    page.fill("input[name='a.0.p.assignee']", "sales")

    # the test button against a typed event: the trace and the rendered action
    page.check("[data-testid=source-typed]")
    page.fill(
        "[data-testid=event-input]",
        '{"total": 150, "email": "ada@example.com", "orderId": "o-1", "country": "DE"}',
    )
    act(page, "[data-testid=test]")
    result = page.locator("[data-testid=test-result]")
    expect(result).to_contain_text("WOULD FIRE")
    trace = page.locator("[data-testid=trace]")
    expect(trace).to_contain_text("ALL")
    expect(trace).to_contain_text("total > 100")
    expect(trace).to_contain_text("email exists")
    expect(trace).to_contain_text("NOT")
    expect(page.locator("[data-testid=rendered-actions]")).to_contain_text(
        "Call ada@example.com about o-1"
    )
    shot(page, "workflow-editor")

    # review the plan, publish
    page.click("[data-testid=review]")
    expect(page.locator("[data-testid=plan]")).to_contain_text("create")
    shot(page, "workflow-review")
    page.click("[data-testid=publish]")
    expect(page).to_have_url(url + "/workflows/big-orders")
    expect(page.locator(".flash.ok")).to_contain_text("workflow big-orders v1")
    expect(page.locator("[data-testid=definition]")).to_contain_text("priority: 8")


def _see_it_run(page: Any, url: str, deployment: Deployment, worker: WorkerProcess) -> None:
    # a real event: the worker runs it, the console shows the execution with its actions
    _loaded(worker, enabled=2)
    event = cloudevent(
        "order.created",
        {"total": 150, "email": "bob@example.com", "orderId": "o-77", "userId": "u-1"},
        event_id="evt-big-1",
    )
    deployment.produce("events.orders", orjson.dumps(event), key=b"o-77")
    _until_row(page, url + "/executions?workflow=big-orders", "evt-big-1")
    page.locator("[data-testid=executions] a").first.click()
    actions = page.locator("[data-testid=execution-actions]")
    expect(actions).to_contain_text("create_task")
    expect(actions).to_contain_text("success")
    expect(actions).to_contain_text(deployment.topic("actions.tasks"))
    expect(page.locator("[data-testid=execution-event]")).to_contain_text("bob@example.com")
    shot(page, "execution")


def _disable_and_see_it_stop(
    page: Any, url: str, deployment: Deployment, worker: WorkerProcess
) -> None:
    # disable it from the list: the next event no longer runs it
    page.goto(url + "/workflows")
    page.click("[data-testid=toggle-big-orders]")
    expect(page.locator(".flash.ok")).to_contain_text("big-orders disabled: published v2")
    expect(page.locator("[data-testid=toggle-big-orders]")).to_have_text("OFF")
    _loaded(worker, enabled=1, disabled=1)
    for event_id in ("evt-big-2", "evt-sentinel"):
        later = cloudevent("order.created", {"total": 500, "userId": "u-2"}, event_id=event_id)
        deployment.produce("events.orders", orjson.dumps(later), key=b"o-78")
    deployment.executions(lambda found: any(r["trigger_event_id"] == "evt-sentinel" for r in found))
    # the sentinel ran after evt-big-2 (same partition): everything to the end holds the answer
    settings = Settings(bootstrap_servers=deployment.bootstrap, topic_prefix=deployment.prefix)
    records = read_executions(settings)
    assert [r["trigger_event_id"] for r in records if r["workflow_id"] == "big-orders"] == [
        "evt-big-1"
    ]
    assert any(
        r["trigger_event_id"] == "evt-big-2" and r["workflow_id"] == "all-orders" for r in records
    )
    page.goto(url + "/workflows/big-orders")
    expect(page.locator("[data-testid=executions]")).not_to_contain_text("evt-big-2")
    shot(page, "workflow")
    # Run now: executed for real (conditions are shown, not checked), recorded as manual
    page.fill("#run-data", '{"total": 5, "email": "eve@example.com", "orderId": "o-5"}')
    page.click("[data-testid=run-now]")
    result = page.locator("[data-testid=run-result]")
    expect(result).to_contain_text("success")
    expect(result).to_contain_text("would not have matched")
    page.goto(url + "/")
    expect(page.locator("[data-testid=workflows-loaded]")).to_have_text("2")


def test_a_failed_execution_is_replayed_after_the_fix(
    stack: dict[str, Any], browser: Any, tokens: dict[str, str]
) -> None:
    deployment: Deployment = stack["deployment"]
    worker: WorkerProcess = stack["worker"]
    url = stack["console"].url
    port = stack["hook"].server_address[1]
    deployment.publish_definition(
        {
            "kind": "workflow",
            "id": "notify-crm",
            "name": "Tell the CRM about failed payments",
            "trigger": "payment.failed",
            "created_by": "tests",
            "actions": [
                {
                    "type": "call_webhook",
                    "url": f"http://127.0.0.1:{port}/payments",
                    "max_attempts": 1,
                    "body": {"payment": "{{paymentId}}"},
                }
            ],
        }
    )
    _loaded(worker, enabled=2, disabled=1)
    event = cloudevent("payment.failed", {"paymentId": "p-9"}, event_id="evt-pay-1")
    deployment.produce("events.payments", orjson.dumps(event), key=b"p-9")
    deployment.produce("events.payments", b"{not json", key=b"p-10")  # a dead letter

    page = login(browser, url, tokens["admin"])
    _until_row(page, url + "/executions?status=failed", "evt-pay-1")
    page.locator("[data-testid=executions] a").first.click()
    expect(page.locator("[data-testid=execution-actions]")).to_contain_text("503")
    shot(page, "execution-failed")

    _Hook.broken = False  # the fix: the receiver is back
    page.click("[data-testid=replay]")
    expect(page.locator(".flash.ok")).to_contain_text("success")
    expect(page.locator("[data-testid=execution-actions]")).to_contain_text("success")
    expect(page.locator("main")).to_contain_text("evt-pay-1#replay-1")
    assert _Hook.calls[-1] == "/payments"

    page.goto(url + "/dlq")
    expect(page.locator("[data-testid=dead-letters]")).to_contain_text("not_json")
    shot(page, "dlq")
    page.locator("[data-testid=dead-letters] a").first.click()
    expect(page.locator("main")).to_contain_text("{not json")
    shot(page, "dead-letter")
    assert page_errors(page) == [], "\n".join(page_errors(page))


def test_install_a_template_and_evaluate_a_pricing_rule(
    stack: dict[str, Any], browser: Any, tokens: dict[str, str]
) -> None:
    url = stack["console"].url
    page = login(browser, url, tokens["admin"])
    page.goto(url + "/templates")
    shot(page, "templates")
    page.click("[data-testid=install-bulk-order-discount]")
    expect(page.locator("[data-testid=plan]")).to_contain_text("create")
    page.click("[data-testid=publish]")
    expect(page.locator(".flash.ok")).to_contain_text("rule bulk-order-discount v1")
    expect(page).to_have_url(url + "/rules/bulk-order-discount")
    page.goto(url + "/templates")
    expect(page.locator("[data-testid=template-bulk-order-discount]")).to_contain_text(
        "installed (live v1)"
    )

    page.goto(url + "/rules")
    expect(page.locator("[data-testid=rule-group-pricing]")).to_contain_text("Bulk Order")
    page.select_option("select[name=rule_type]", "pricing")
    page.fill("[data-testid=facts]", '{"total": 620}')
    page.click("[data-testid=evaluate]")
    decision = page.locator("[data-testid=decision]")
    expect(decision).to_contain_text("bulk-order-discount")
    expect(page.locator("[data-testid=final-price]")).to_have_text(re.compile(r"^527(\.0+)?$"))
    shot(page, "rules")
    page.goto(url + "/executions")
    shot(page, "executions")
    page.goto(url + "/")
    expect(page.locator("[data-testid=workflows-loaded]")).to_have_text("3")
    shot(page, "overview")
    assert page_errors(page) == [], "\n".join(page_errors(page))


def test_a_read_token_sees_but_cannot_change(
    stack: dict[str, Any], browser: Any, tokens: dict[str, str]
) -> None:
    url = stack["console"].url
    page = login(browser, url, tokens["read"])
    expect(page.locator("[data-testid=workflow-list]")).to_contain_text("all-orders")
    assert page.locator("[data-testid^=toggle-]").count() == 0
    assert page.locator("[data-testid=new-workflow]").count() == 0
    shot(page, "workflows-read-only")
    page.goto(url + "/workflows/all-orders")
    assert page.locator("[data-testid=edit]").count() == 0
    assert page.locator("[data-testid=run-now]").count() == 0
    page.goto(url + "/templates")
    assert page.locator("[data-testid^=install-]").count() == 0
    page.goto(url + "/executions")
    page.locator("[data-testid=executions] a").first.click()
    expect(page.locator("[data-testid=execution-actions]")).to_be_visible()
    assert page.locator("[data-testid=replay]").count() == 0

    # the endpoints refuse too, even with the session's valid CSRF token
    csrf = json.loads(page.locator("body").get_attribute("hx-headers"))["X-CSRF-Token"]
    execution = page.url.rsplit("/", 1)[1]
    attempts = {
        "/workflows/all-orders/toggle": {
            "enabled": "false",
            "base_offset": "0",
            "base_version": "1",
        },
        "/workflows/all-orders/delete": {"base_offset": "0", "base_version": "1"},
        "/workflows/all-orders/run": {"data": "{}"},
        "/templates/install": {"name": "low-stock-alert"},
        "/publish": {"definitions": "[]", "bases": "[]"},
        f"/executions/{execution}/replay": {},
        "/dlq/0/replay": {},
        "/editor": {"kind": "workflow", "op": "review"},
    }
    for path, form in attempts.items():
        response = page.request.post(url + path, form={**form, "csrf_token": csrf})
        assert response.status == 403, (path, response.status)
        assert "read token" in response.text()
    assert page.request.get(url + "/workflows/new").status == 403
    assert page_errors(page) == [], "\n".join(page_errors(page))
