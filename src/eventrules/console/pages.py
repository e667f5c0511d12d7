"""Rendering pages: the Jinja environment (autoescaped, strict) and what every page is given."""

from __future__ import annotations

import difflib
import functools
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import orjson
import yaml
from aiohttp import web

from eventrules import __version__
from eventrules.console.context import CONSOLE
from eventrules.console.forms import text_value
from eventrules.console.security import current_principal, current_session

__all__ = ["make_environment", "redirect", "render", "unified_diff"]

_STATUS_CLASS = {
    "success": "ok",
    "ok": "ok",
    "applied": "ok",
    "failed": "bad",
    "partial": "warn",
    "retrying": "warn",
    "delayed": "muted",
    "skipped": "muted",
    "create": "ok",
    "update": "warn",
    "delete": "bad",
    "unchanged": "muted",
}


def _iso_ms(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    text = str(value)
    try:
        return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return text


def _duration(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _percent(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _pretty_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)


def unified_diff(before: Any, after: Any, before_name: str, after_name: str) -> list[str]:
    """A line diff of two definitions as YAML (None: absent)."""
    old = _yaml(before).splitlines() if before is not None else []
    new = _yaml(after).splitlines() if after is not None else []
    return list(difflib.unified_diff(old, new, before_name, after_name, lineterm="", n=2))


_STATIC = Path(__file__).parent / "static"


@functools.cache
def _static_url(name: str) -> str:
    # a content hash in the URL: a new release is never served from a stale browser cache
    digest = hashlib.sha256((_STATIC / name).read_bytes()).hexdigest()[:12]
    return f"/static/{name}?v={digest}"


def make_environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("eventrules.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        when=_iso_ms,
        duration=_duration,
        percent=_percent,
        pretty_json=_pretty_json,
        yaml=_yaml,
        status_class=lambda status: _STATUS_CLASS.get(str(status), "muted"),
        field_text=text_value,
    )
    environment.globals["static"] = _static_url
    return environment


def render(
    request: web.Request,
    template: str,
    *,
    status: int = 200,
    fragment: bool = False,
    **context: Any,
) -> web.Response:
    """A page (or, ``fragment``, a piece of one loaded into a page: it leaves the queued
    messages for the next page)."""
    console = request.app[CONSOLE]
    principal = current_principal(request)
    session = current_session(request)
    session_id = session.id if session is not None else None
    page = console.jinja.get_template(template).render(
        principal=principal,
        can_admin=principal.may("admin"),
        csrf_token=session.csrf_token if session is not None else "",
        flashes=[] if fragment else console.take_flashes(session_id),
        path=request.path,
        version=__version__,
        prefix=console.settings.topic_prefix,
        **context,
    )
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")


def redirect(request: web.Request, location: str, kind: str, message: str) -> web.HTTPSeeOther:
    """POST-redirect-GET with a message shown on the next page."""
    session = current_session(request)
    request.app[CONSOLE].flash(session.id if session is not None else None, kind, message)
    return web.HTTPSeeOther(location)
