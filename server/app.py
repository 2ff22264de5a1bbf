"""create_app(settings) -> FastAPI: engine, templates, routers, static files and error pages. No logic."""

from __future__ import annotations

import ctypes
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Match
from starlette.types import Scope

from server.config import ROOT, Settings
from server.db import make_engine
from server.errors import MESSAGES, RETRY_AFTER_SECONDS, STATUS, AppError, ErrorCode, database_refusal
from server.guards import HeadMiddleware, InputGuardMiddleware
from server.i18n import gettext, pick_language
from server.middleware import AddressMiddleware, SecurityMiddleware, problem_body
from server.routes import (
    api,
    api_kiosk,
    api_people,
    api_tokens,
    app_shell,
    audit,
    checkin,
    clubs,
    desk,
    events,
    indicators,
    kiosks,
    library,
    my_data,
    pages,
    people,
    places,
    places_history,
    report_groups,
    reports,
    staff,
)
from server.templating import Templates

PROBLEM_JSON = "application/problem+json"


def create_app(settings: Settings) -> FastAPI:
    engine = make_engine(settings)
    # The demo banner's flag is read every 30 s while a request already holds a pooled connection: from
    # the pool, a burst of requests each waiting for a second connection deadlocked until the pool timeout.
    meta_engine = make_engine(settings, pooled=False)
    templates = Templates(settings, meta_engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()
        meta_engine.dispose()

    app = FastAPI(
        title="Điểm danh API",
        version="1",
        description="Check-in and participation tracking. Errors are RFC 9457 problem details with a `code`.",
        lifespan=lifespan,
        docs_url=None,  # served by pages.api_docs from static/vendor, under the app's CSP
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.templates = templates

    for router in (
        pages.router,
        app_shell.router,
        checkin.router,
        my_data.router,
        events.router,
        desk.router,
        clubs.router,
        library.router,
        people.router,
        places.router,
        places_history.router,
        report_groups.router,
        reports.router,
        indicators.router,
        staff.router,
        audit.router,
        kiosks.router,
        api.router,
        api_people.router,
        api_tokens.router,
        api_kiosk.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")

    def refuse(scope: Scope, code: ErrorCode, status: int) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """A refusal made by a middleware, before any route runs: a problem document or a page."""
        request = Request(scope)
        if _wants_json(request):
            title = gettext(pick_language(request), MESSAGES[code])
            return status, [(b"content-type", PROBLEM_JSON.encode())], problem_body(status, code, title)
        page = templates.render(
            request, "errors/error.html", {"code": code, "message": MESSAGES[code]}, status_code=status
        )
        return status, [(b"content-type", b"text/html; charset=utf-8")], bytes(page.body)

    def refuse_csrf(scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        return refuse(scope, ErrorCode.csrf_failed, 403)

    app.add_middleware(InputGuardMiddleware, max_body_bytes=settings.max_body_kb * 1024, refuse=refuse)
    app.add_middleware(SecurityMiddleware, settings=settings, refuse=refuse_csrf)
    app.add_middleware(AddressMiddleware)
    # Pages and files travel compressed: on weak 3G in the mountains bytes are what the resident waits for.
    app.add_middleware(GZipMiddleware, minimum_size=500)
    app.add_middleware(HeadMiddleware)  # outermost: every layer inside sees a GET

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        return error_response(request, templates, exc.code, exc.status, exc.detail, exc.extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return error_response(request, templates, ErrorCode.invalid_input, 422, None, {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, ErrorCode.invalid_input)
        headers = {"Allow": allowed_methods(app, request.scope)} if exc.status_code == 405 else None
        return error_response(request, templates, code, exc.status_code, None, {}, headers=headers)

    @app.exception_handler(sa_exc.IntegrityError)
    @app.exception_handler(sa_exc.DataError)
    @app.exception_handler(OverflowError)
    @app.exception_handler(sa_exc.OperationalError)
    @app.exception_handler(sa_exc.TimeoutError)
    @app.exception_handler(sa_exc.DBAPIError)
    @app.exception_handler(sqlite3.OperationalError)
    async def database_error(request: Request, exc: Exception) -> Response:
        refusal = database_refusal(exc)
        if refusal is None:
            raise exc
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if refusal.status == 503 else None
        return error_response(request, templates, refusal.code, refusal.status, None, {}, headers=headers)

    return app


HTTP_CODES = {
    404: ErrorCode.not_found,
    405: ErrorCode.method_not_allowed,
    413: ErrorCode.payload_too_large,
    415: ErrorCode.unsupported_media_type,
}


def allowed_methods(app: FastAPI, scope: Scope) -> str:
    """Every method some route serves at this path: Starlette's own 405 names only the first route's
    (GET for /events, which a POST serves too)."""
    served = [
        method
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in app.router.routes)
    ]
    if "GET" in served:
        served.insert(1, "HEAD")  # HeadMiddleware answers HEAD wherever GET is served
    return ", ".join(served)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def error_response(
    request: Request,
    templates: Templates,
    code: ErrorCode,
    status: int,
    detail: str | None,
    extra: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    """A coded refusal as a problem document (API) or a page in the visitor's language."""
    language = pick_language(request)
    if _wants_json(request):
        public = {k: v for k, v in extra.items() if k in ("fields", "errors", "checked_in_at")}
        if "fields" in public:
            public["fields"] = {k: gettext(language, v) for k, v in public["fields"].items()}
        if "checked_in_at" in public:
            public["checked_in_at"] = public["checked_in_at"].isoformat()
        body = problem_body(status, code, gettext(language, MESSAGES[code]), detail, **public)
        headers = dict(headers or {})
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if "retry_after" in extra:
            headers["Retry-After"] = str(extra["retry_after"])
        return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)
    if code == ErrorCode.login_required:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    context = {"code": code, "message": MESSAGES[code], "detail": detail, **extra}
    page_headers = dict(headers or {})
    if "retry_after" in extra:
        page_headers["Retry-After"] = str(extra["retry_after"])
    return templates.render(
        request,
        "errors/error.html",
        context,
        status_code=status or STATUS[code],
        headers=page_headers or None,
    )


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory server.app:app_from_env` (each worker builds its own app)."""
    _fewer_malloc_arenas()
    return create_app(Settings.from_env())


M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def _fewer_malloc_arenas() -> None:
    """glibc gives threads that allocate at once arenas of their own (up to 8 per core), and memory freed in
    one is not used by another: with the request thread pool, an app process grew from about 105 MB to
    155 MB under 64 connections. With two arenas it ended at about 130 MB, at the same speed (bench/load.py,
    12/2026)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc (musl, macOS): nothing to tune
    libc.mallopt(M_ARENA_MAX, 2)
