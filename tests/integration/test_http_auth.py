"""A worker serving on every interface: bearer tokens required, and no tokens means no start."""

from __future__ import annotations

import json

import httpx
import pytest

from eventrules.auth import hash_token
from integration.harness import Deployment

pytestmark = pytest.mark.integration

READ = "ert_integration-read-token"
ADMIN = "ert_integration-admin-token"
TOKENS = json.dumps(
    [
        {"name": "prometheus", "sha256": hash_token(READ), "scope": "read"},
        {"name": "ops", "sha256": hash_token(ADMIN), "scope": "admin"},
    ]
)


def test_a_worker_on_every_interface_answers_only_token_holders(deployment: Deployment) -> None:
    worker = deployment.start_worker(
        EVENTRULES_WEB_HOST="0.0.0.0",  # noqa: S104 - what the image does
        EVENTRULES_HTTP_TOKENS=TOKENS,
    )
    worker.wait_ready()  # the probes stay open
    assert worker.get("/healthz").status_code == 200
    assert worker.get("/metrics").status_code == 401
    wrong = httpx.get(
        worker.url + "/metrics", headers={"Authorization": f"Bearer {READ}x"}, trust_env=False
    )
    assert wrong.status_code == 401
    scraped = httpx.get(
        worker.url + "/metrics", headers={"Authorization": f"Bearer {READ}"}, trust_env=False
    )
    assert scraped.status_code == 200
    assert 'eventrules_http_auth_failures_total{reason="unauthenticated"} 2.0' in scraped.text
    question = {"rule_type": "validation", "facts": {"total": 5}}
    url = worker.url + "/rules/evaluate"
    assert httpx.post(url, json=question, trust_env=False).status_code == 401
    answered = httpx.post(
        url, json=question, headers={"Authorization": f"Bearer {READ}"}, trust_env=False
    )
    assert answered.status_code == 200
    change = httpx.post(
        worker.url + "/anything", headers={"Authorization": f"Bearer {READ}"}, trust_env=False
    )
    assert change.status_code == 403
    assert "needs admin" in change.json()["error"]


def test_a_worker_refuses_every_interface_without_tokens(deployment: Deployment) -> None:
    worker = deployment.start_worker(EVENTRULES_WEB_HOST="0.0.0.0")  # noqa: S104
    assert worker.process is not None
    assert worker.process.wait(60) != 0
    assert "refusing to serve HTTP on 0.0.0.0 without bearer tokens" in worker.log_tail()
