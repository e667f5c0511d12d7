"""Dead letters: the list with reasons, one inspected, replay to the source topic."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from eventrules.console.context import CONSOLE
from eventrules.console.forms import optional_text
from eventrules.console.pages import redirect, render
from eventrules.console.security import admin_only, current_principal
from eventrules.errors import InputError, NotFoundError
from eventrules.ops.dlq import DeadLetter, choose_dead_letters, replay_dead_letters

__all__ = ["add_routes"]

_SHOWN = 500
_PREVIEW_BYTES = 64 * 1024


def _preview(value: bytes | None) -> str:
    """The value as text for a person: pretty JSON when it is JSON, else decoded bytes."""
    if value is None:
        return "(null)"
    clipped = value[:_PREVIEW_BYTES]
    try:
        return orjson.dumps(orjson.loads(clipped), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        suffix = (
            f"\n… {len(value) - _PREVIEW_BYTES} more bytes" if len(value) > _PREVIEW_BYTES else ""
        )
        return clipped.decode(errors="replace") + suffix


async def dlq_list(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    reason = optional_text(request.query, "reason", max_length=100)
    letters = await console.dead_letters()
    reasons = sorted({letter.info.get("reason", "") for letter in letters})
    shown = [one for one in letters if reason is None or one.info.get("reason") == reason]
    return render(
        request,
        "dlq.html",
        letters=list(reversed(shown[-_SHOWN:])),
        total=len(shown),
        reasons=reasons,
        reason=reason or "",
    )


def _offset(request: web.Request) -> int:
    text = request.match_info["offset"]
    if not text.isdigit() or len(text) > 19:
        raise InputError("offset", "not a dlq offset")
    return int(text)


async def _letter(request: web.Request, offset: int) -> DeadLetter:
    console = request.app[CONSOLE]
    letters = await console.dead_letters()
    found = next((letter for letter in letters if letter.offset == offset), None)
    if found is None:  # maybe newer than the cached list: read the topic again before saying no
        console.forget("dlq")
        letters = await console.dead_letters()
        found = next((letter for letter in letters if letter.offset == offset), None)
    if found is None:
        raise NotFoundError(f"no dead letter at offset {offset}")
    return found


async def dlq_detail(request: web.Request) -> web.Response:
    letter = await _letter(request, _offset(request))
    headers = [
        (name, value.decode(errors="replace") if isinstance(value, bytes) else str(value))
        for name, value in letter.headers
    ]
    return render(
        request,
        "dead_letter.html",
        letter=letter,
        key=(letter.key or b"").decode(errors="replace"),
        value=_preview(letter.value),
        headers=headers,
    )


@admin_only
async def dlq_replay(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    offset = _offset(request)
    form = await request.post()
    again = optional_text(form, "again", max_length=5) == "true"
    console.forget("dlq")  # replay what the topic holds now, not a cached list
    letters = await console.dead_letters()
    chosen = choose_dead_letters(letters, offsets=[offset], again=again)
    back = f"/dlq/{offset}"
    if not chosen:
        raise redirect(request, back, "info", "Already replayed; tick 'again' to replay it again.")
    by = current_principal(request).name
    await asyncio.to_thread(replay_dead_letters, console.settings, chosen, by=by)
    console.forget("dlq")
    target = chosen[0].info["source.topic"]
    raise redirect(request, back, "ok", f"Replayed dlq@{offset} to {target}.")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/dlq", dlq_list)
    router.add_get("/dlq/{offset}", dlq_detail)
    router.add_post("/dlq/{offset}/replay", dlq_replay)
