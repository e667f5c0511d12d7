"""The console over real HTTP on a real broker: login, cookies, CSRF, scopes, security headers,
hostile input, and a concurrent edit refused at publish."""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from eventrules.auth import hash_token, new_token
from eventrules.kafka.deadletter import dead_letter_headers
from integration.harness import ConsoleProcess, Deployment, cloudevent, order_workflow

pytestmark = pytest.mark.integration

ADMIN, READ = new_token(), new_token()


@pytest.fixture(scope="module")
def console(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("console-http")
    deployment = Deployment(kafka_bootstrap, tmp)
    deployment.publish_definition(order_workflow("count-orders"))
    hostile = order_workflow("shady") | {"name": "<script>alert(1)</script>"}
    deployment.publish_definition(hostile)
    entries = [
        {"name": "alice", "sha256": hash_token(ADMIN), "scope": "admin"},
        {"name": "rita", "sha256": hash_token(READ), "scope": "read"},
    ]
    process = ConsoleProcess(
        env={
            **deployment.env(),
            "EVENTRULES_HTTP_TOKENS": json.dumps(entries),
            "EVENTRULES_CONSOLE_INDEX_PATH": str(tmp / "index.sqlite3"),
            "EVENTRULES_CONSOLE_TRUST_PROXY": "true",
        },
        log_path=tmp / "console.log",
    ).start()
    try:
        process.wait_ready()
        yield {"url": process.url, "deployment": deployment}
    finally:
        process.stop()
        deployment.close()


def client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30, trust_env=False, follow_redirects=False)


@contextlib.contextmanager
def logged_in(url: str, token: str) -> Iterator[tuple[httpx.Client, str]]:
    """A client with a session cookie, and the session's CSRF token."""
    with client(url) as http:
        yield http, _login(http, token)


def _login(http: httpx.Client, token: str) -> str:
    form = http.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    answer = http.post("/login", data={"nonce": nonce.group(1), "token": token, "next": "/"})
    assert answer.status_code == 303, answer.text
    page = http.get("/workflows")
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)
    assert csrf is not None
    return csrf.group(1)


def test_nothing_is_shown_or_done_without_logging_in(console: dict[str, Any]) -> None:
    with client(console["url"]) as http:
        page = http.get("/workflows?q=a")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=/workflows?q=a"
        assert http.get("/", headers={"HX-Request": "true"}).status_code == 401
        assert http.post("/workflows/count-orders/toggle", data={}).status_code == 401
        assert http.get("/workflows", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert http.get("/healthz").status_code == 200


def test_login_sets_a_strict_http_only_cookie_and_refuses_bad_tokens(
    console: dict[str, Any],
) -> None:
    with client(console["url"]) as http:
        form = http.get("/login")
        assert form.status_code == 200
        nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
        assert nonce is not None
        forged = http.post("/login", data={"nonce": "forged", "token": ADMIN})
        assert forged.status_code == 403
        http.get("/login")  # a fresh nonce cookie
        nonce = re.search(r'name="nonce" value="([^"]+)"', http.get("/login").text)
        assert nonce is not None
        wrong = http.post("/login", data={"nonce": nonce.group(1), "token": "ert_guess"})
        assert wrong.status_code == 401
        assert "not valid" in wrong.text
    with client(console["url"]) as http:
        nonce = re.search(r'name="nonce" value="([^"]+)"', http.get("/login").text)
        assert nonce is not None
        answer = http.post(
            "/login", data={"nonce": nonce.group(1), "token": ADMIN, "next": "//evil.example/"}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/"
        cookie = next(
            v for k, v in answer.headers.multi_items() if k == "set-cookie" and "session" in v
        )
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Secure" not in cookie  # plain HTTP, no proxy said otherwise
    # behind a TLS-terminating proxy the console trusts: __Host- and Secure (a Secure cookie
    # is not sent over plain HTTP by the client, so the test hands it back as the browser would)
    with client(console["url"]) as http:
        https = {"X-Forwarded-Proto": "https"}
        form = http.get("/login", headers=https)
        nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
        assert nonce is not None
        login_cookie = form.headers["set-cookie"]
        assert login_cookie.startswith("__Host-eventrules-login=")
        assert "Secure" in login_cookie
        answer = http.post(
            "/login",
            data={"nonce": nonce.group(1), "token": READ},
            headers={**https, "Cookie": login_cookie.split(";", 1)[0]},
        )
        assert answer.status_code == 303
        cookie = next(
            v for k, v in answer.headers.multi_items() if k == "set-cookie" and "session" in v
        )
        assert cookie.startswith("__Host-eventrules-session=")
        assert "Secure" in cookie


def test_every_change_needs_the_session_csrf_token_and_a_same_origin(
    console: dict[str, Any],
) -> None:
    with logged_in(console["url"], ADMIN) as (http, csrf):
        body = {"kind": "workflow", "mode": "form", "base_offset": "-1", "base_version": "0"}
        assert http.post("/editor", data=body).status_code == 403
        assert http.post("/editor", data={**body, "csrf_token": "x" * 43}).status_code == 403
        cross = http.post(
            "/editor",
            data={**body, "csrf_token": csrf},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        same = http.post(
            "/editor",
            data={**body, "csrf_token": csrf, "op": "refresh"},
            headers={"Origin": console["url"]},
        )
        assert same.status_code == 200
        # the header form htmx sends works too
        assert (
            http.post("/editor", data={**body, "op": "refresh"}, headers={"X-CSRF-Token": csrf})
        ).status_code == 200
        # after logging out the session is gone
        assert http.post("/logout", data={"csrf_token": csrf}).status_code == 303
        assert http.get("/workflows").status_code == 303


def test_a_bearer_header_works_for_scripts_and_read_tokens_cannot_change(
    console: dict[str, Any],
) -> None:
    with client(console["url"]) as http:
        read = {"Authorization": f"Bearer {READ}"}
        assert http.get("/workflows", headers=read).status_code == 200
        refused = http.post(
            "/workflows/count-orders/toggle",
            data={"enabled": "false", "base_offset": "0", "base_version": "1"},
            headers=read,
        )
        assert refused.status_code == 403
        assert "read token" in refused.text


def test_every_response_carries_the_security_headers(console: dict[str, Any]) -> None:
    with logged_in(console["url"], READ) as (http, _):
        for path in ("/", "/workflows", "/login", "/nope"):
            headers = http.get(path).headers
            assert "script-src 'self'" in headers["content-security-policy"]
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            assert headers["x-frame-options"] == "DENY"
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["cache-control"] == "no-store"


def test_definitions_are_escaped_on_every_page(console: dict[str, Any]) -> None:
    with logged_in(console["url"], READ) as (http, _):
        for path in ("/workflows", "/workflows/shady"):
            page = http.get(path)
            assert page.status_code == 200
            assert "<script>alert(1)</script>" not in page.text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/executions?limit=7", "limit"),
        ("/executions?after=1%20OR%201=1", "after"),
        ("/executions?since=yesterday", "since"),
        ("/executions?status=%27%3B--", "status"),
        ("/workflows?trigger=order.nope", "trigger"),
        ("/workflows/" + "x" * 200, "workflow"),
        ("/dlq/-1", "offset"),
    ],
)
def test_hostile_query_parameters_get_a_400_naming_them(
    console: dict[str, Any], path: str, field: str
) -> None:
    with client(console["url"]) as http:
        page = http.get(path, headers={"Authorization": f"Bearer {READ}"})
        assert page.status_code == 400, page.text[:300]
        assert f"{field}:" in page.text


def test_hostile_forms_are_refused(console: dict[str, Any]) -> None:
    with logged_in(console["url"], ADMIN) as (http, csrf):
        base = {"csrf_token": csrf, "kind": "workflow", "base_offset": "-1", "base_version": "0"}
        huge = http.post("/editor", data={**base, "mode": "yaml", "source": "x" * 300_000})
        assert huge.status_code == 400
        assert "source: at most 262144 characters" in huge.text
        bomb = "a: &a [1, 2]\nb: &b [*a, *a]\nc: [*b, *b]\n"
        aliases = http.post("/editor", data={**base, "mode": "yaml", "source": bomb})
        assert aliases.status_code == 400
        assert "aliases" in aliases.text
        too_big = http.post(
            "/editor",
            content=b"x" * (3 * 1024 * 1024),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-CSRF-Token": csrf,
            },
        )
        assert too_big.status_code == 413
        facts = http.post(
            "/rules/evaluate", data={"csrf_token": csrf, "rule_type": "pricing", "facts": "[1]"}
        )
        assert facts.status_code == 400
        assert "facts: expected a JSON object" in facts.text
        forged = http.post(
            "/publish",
            data={"csrf_token": csrf, "definitions": "[{}]", "bases": '[["workflow", "a", 1]]'},
        )
        assert forged.status_code == 400


def test_a_definition_changed_since_the_editor_opened_is_not_overwritten(
    console: dict[str, Any],
) -> None:
    deployment: Deployment = console["deployment"]
    with logged_in(console["url"], ADMIN) as (http, csrf):
        editor = http.get("/workflows/count-orders/edit")
        offset = re.search(r'name="base_offset" value="(\d+)"', editor.text)
        assert offset is not None
        # someone else publishes v2 meanwhile
        deployment.publish_definition(
            order_workflow("count-orders") | {"version": 2, "priority": 9}
        )
        mine = order_workflow("count-orders") | {"version": 1, "priority": 3}
        bases = json.dumps([["workflow", "count-orders", int(offset.group(1)), 1]])
        answer = http.post(
            "/publish",
            data={
                "csrf_token": csrf,
                "definitions": orjson.dumps([mine]).decode(),
                "bases": bases,
            },
        )
        assert answer.status_code == 409
        assert "Nothing was published" in answer.text
        assert "v1 -&gt; v2" in answer.text
        live = http.get("/workflows/count-orders")
        assert "priority: 9" in live.text


def _new_email_workflow(csrf: str, **fields: str) -> dict[str, str]:
    """The editor form of a new workflow with one send_email action, asking for a review."""
    form = {
        "csrf_token": csrf,
        "kind": "workflow",
        "mode": "form",
        "is_new": "true",
        "base_offset": "-1",
        "base_version": "0",
        "op": "review",
        "id": "good-id",
        "created_by": "alice",
        "name": "x",
        "trigger": "order.created",
        "priority": "5",
        "a.0.type": "send_email",
        "a.0.p.to": "ops@example.com",
        "a.0.p.subject": "s",
        "a.0.p.body": "b",
    }
    return form | fields


def test_a_workflow_with_memory_opens_as_yaml_and_the_form_cannot_drop_it(
    console: dict[str, Any],
) -> None:
    deployment: Deployment = console["deployment"]
    throttled = order_workflow("throttled-orders") | {
        "throttle": {"key": "{{ orderId }}", "limit": 1, "per": "6h"}
    }
    deployment.publish_definition(throttled)
    with logged_in(console["url"], ADMIN) as (http, csrf):
        editor = http.get("/workflows/throttled-orders/edit")
        assert editor.status_code == 200
        assert 'class="current" data-testid="tab-yaml"' in editor.text
        assert "throttle:" in editor.text
        source = re.search(r'<textarea[^>]*name="source"[^>]*>([^<]*)</textarea>', editor.text)
        assert source is not None
        to_form = http.post(
            "/editor",
            data={
                "csrf_token": csrf,
                "kind": "workflow",
                "mode": "yaml",
                "is_new": "false",
                "base_offset": "-1",
                "base_version": "1",
                "op": "mode:form",
                "source": html.unescape(source.group(1)),
            },
        )
        assert "which the form does not show" in to_form.text
        assert 'class="current" data-testid="tab-yaml"' in to_form.text


def test_the_editor_validates_at_the_field_over_http(console: dict[str, Any]) -> None:
    with logged_in(console["url"], ADMIN) as (http, csrf):
        answer = http.post(
            "/editor", data=_new_email_workflow(csrf, **{"id": "bad id!", "a.0.p.to": ""})
        )
        assert answer.status_code == 400
        # the id's and the recipient's fields carry their errors
        assert re.search(r'class="field has-error"><label for="f-id">', answer.text)
        assert re.search(r'class="param has-error">\s*<label for="a\.0\.p\.to">', answer.text)
        # a template that does not compile, at its field too
        template = http.post(
            "/editor", data=_new_email_workflow(csrf, **{"a.0.p.body": "{{ unclosed"})
        )
        assert template.status_code == 400
        assert re.search(r'class="param has-error">\s*<label for="a\.0\.p\.body">', template.text)


def test_a_dead_letter_is_replayed_to_its_source_topic(console: dict[str, Any]) -> None:
    deployment: Deployment = console["deployment"]
    headers = dead_letter_headers(
        reason="not_json",
        error="value is not JSON",
        topic=deployment.topic("events.orders"),
        partition=0,
        offset=41,
    )
    deployment.produce("dlq", b'{"fixed": true}', key=b"order-9", headers=headers)
    letters = deployment.read("dlq", until=lambda found: len(found) >= 1)
    offset = letters[-1].offset()
    with logged_in(console["url"], ADMIN) as (http, csrf):
        page = http.get(f"/dlq/{offset}")
        assert page.status_code == 200
        assert "not_json" in page.text
        answer = http.post(f"/dlq/{offset}/replay", data={"csrf_token": csrf})
        assert answer.status_code == 303
        replayed = deployment.read(
            "events.orders", until=lambda found: any(m.key() == b"order-9" for m in found)
        )
        record = next(m for m in replayed if m.key() == b"order-9")
        assert record.value() == b'{"fixed": true}'
        assert ("eventrules-replayed-from", f"dlq@{offset}".encode()) in (record.headers() or [])
        # the replay is recorded on the dlq topic (by the token's name) and shown
        shown = http.get(f"/dlq/{offset}")
        assert "by alice" in shown.text


def test_recent_events_of_a_trigger_are_offered_to_the_test_button(
    console: dict[str, Any],
) -> None:
    deployment: Deployment = console["deployment"]
    event = cloudevent("order.created", {"total": 3}, event_id="evt-recent-1")
    deployment.produce("events.orders", orjson.dumps(event), key=b"r-1")
    deployment.produce("events.orders", b"poison", key=b"r-2")  # skipped, not an event
    with logged_in(console["url"], READ) as (http, _):
        picker = http.get("/events/recent?trigger=order.created")
        assert picker.status_code == 200
        assert "evt-recent-1" in picker.text
        assert "evt-recent-1" not in http.get("/events/recent?trigger=order.updated").text


def test_delete_asks_first_then_publishes_a_tombstone(console: dict[str, Any]) -> None:
    deployment: Deployment = console["deployment"]
    deployment.publish_definition(order_workflow("doomed"))
    with logged_in(console["url"], ADMIN) as (http, csrf):
        confirm = http.get("/workflows/doomed/delete")
        assert confirm.status_code == 200
        assert "Delete workflow doomed?" in confirm.text
        offset = re.search(r'name="base_offset" value="(\d+)"', confirm.text)
        assert offset is not None
        answer = http.post(
            "/workflows/doomed/delete",
            data={"csrf_token": csrf, "base_offset": offset.group(1), "base_version": "1"},
        )
        assert answer.status_code == 303
        assert http.get("/workflows/doomed").status_code == 404
    records = deployment.read(
        "config",
        until=lambda found: any(m.key() == b"workflow:doomed" and m.value() is None for m in found),
    )
    assert records
