"""An ASGI middleware that refuses malformed requests before any route reads them.

It owns three rules, so that no route has to repeat them: a body is at most `max_body_kb` (counted as it
arrives, so a chunked body without Content-Length cannot slip past), it comes in a content type its
area reads (JSON under /api/, a form on pages), and no path, query or text field holds a control
character (PostgreSQL cannot store a NUL byte at all; SQLite would keep an invisible one). Text fields are
those of JSON, urlencoded and multipart bodies alike; a multipart file part (an import's CSV or XLSX) is
data for its own parser and is not read here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncGenerator, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import ErrorCode

# C0 controls but tab, line feed and carriage return (which forms send in text areas), and DEL.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
# refuse(scope, code, status) -> (status, headers, body): the page or problem document of a refusal.
Refuse = Callable[[Scope, ErrorCode, int], tuple[int, list[tuple[bytes, bytes]], bytes]]


class TooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes the limit; the app's error handler answers 413."""

    def __init__(self) -> None:
        super().__init__(status_code=413)


def has_control(value: Any) -> bool:
    """True when a decoded JSON value holds a control character in any string, key or nested value."""
    if isinstance(value, str):
        return CONTROL.search(value) is not None
    if isinstance(value, dict):
        return any(has_control(k) or has_control(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_control(v) for v in value)
    return False


def _media_type(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


class InputGuardMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, refuse: Refuse) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        if CONTROL.search(scope["path"]) or any(
            CONTROL.search(k) or CONTROL.search(v) for k, v in parse_qsl(query, keep_blank_values=True)
        ):
            await self._answer(scope, send, ErrorCode.invalid_characters, 422)
            return
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            await self._answer(scope, send, ErrorCode.payload_too_large, 413)
            return
        media_type = _media_type(scope)
        api = scope["path"].startswith("/api/")
        if api and media_type and not _is_json(media_type):
            await self._answer(scope, send, ErrorCode.unsupported_media_type, 415)
            return
        if not api and _is_json(media_type):
            await self._answer(scope, send, ErrorCode.unsupported_media_type, 415)
            return
        # FastAPI reads a body without a content type as JSON, so it is checked as JSON.
        as_json = _is_json(media_type) or (api and not media_type)
        if as_json or media_type in (FORM, MULTIPART):
            body = await self._read(receive)
            if body is None:
                await self._answer(scope, send, ErrorCode.payload_too_large, 413)
                return
            if as_json and not _utf8(body):  # FastAPI would answer a bare 400
                await self._answer(scope, send, ErrorCode.invalid_input, 422)
                return
            if await _text_has_control(scope, body, media_type, as_json=as_json):
                await self._answer(scope, send, ErrorCode.invalid_characters, 422)
                return
            await self.app(scope, _replay(body, receive), send)
            return
        await self.app(scope, self._counting(receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _counting(self, receive: Receive) -> Receive:
        """`receive` that raises TooLarge once the body (a file upload, streamed on) passes the limit."""
        size = 0

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.max_body_bytes:
                    raise TooLarge()
            return message

        return counted

    async def _answer(self, scope: Scope, send: Send, code: ErrorCode, status: int) -> None:
        status, headers, body = self.refuse(scope, code, status)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _text_has_control(scope: Scope, body: bytes, media_type: str, *, as_json: bool) -> bool:
    """True when a text field of the body (any JSON string or key, a form's or a multipart text part's name
    or value) holds a control character."""
    if not body:
        return False
    if as_json:
        try:
            return has_control(json.loads(body))
        except ValueError:  # not JSON at all: the route's parser refuses it with its own 422
            return False
    if media_type == MULTIPART:
        return await _multipart_has_control(scope, body)
    pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
    return any(CONTROL.search(k) or CONTROL.search(v) for k, v in pairs)


async def _multipart_has_control(scope: Scope, body: bytes) -> bool:
    """Starlette's own multipart parser reads the parts, so the fields checked are exactly the fields the
    route gets (same boundary, charset and file-or-text decision). Its limits are lifted here: the body's
    size is already bounded, and a request the route's parser refuses is refused there."""

    async def stream() -> AsyncGenerator[bytes]:
        yield body

    parser = MultiPartParser(
        Headers(scope=scope), stream(), max_files=math.inf, max_fields=math.inf, max_part_size=len(body)
    )
    try:
        form = await parser.parse()
    except MultiPartException:  # malformed: the route's parser answers it
        return False
    try:
        return any(
            CONTROL.search(name) or (isinstance(value, str) and CONTROL.search(value))
            for name, value in form.multi_items()
        )
    finally:
        await form.close()


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` that hands the app the body already read, then whatever comes next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class HeadMiddleware:
    """HEAD answers as GET does, without the body: the same status and headers (Content-Length included),
    for monitors, link checkers and proxies (HTTP requires HEAD wherever GET is served; FastAPI's routes
    serve GET alone)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
