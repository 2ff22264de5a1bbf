"""create_app(settings) -> FastAPI: engine, templates, routers, static files and error pages. No logic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Scope

from server.config import ROOT, Settings
from server.db import make_engine
from server.errors import MESSAGES, STATUS, AppError, ErrorCode
from server.i18n import gettext, pick_language
from server.middleware import SecurityMiddleware, problem_body
from server.routes import (
    api,
    api_kiosk,
    api_people,
    app_shell,
    checkin,
    clubs,
    desk,
    events,
    indicators,
    kiosks,
    library,
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
        kiosks.router,
        api.router,
        api_people.router,
        api_kiosk.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")

    def refuse_csrf(scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        request = Request(scope)
        code = ErrorCode.csrf_failed
        if _wants_json(request):
            title = gettext(pick_language(request), MESSAGES[code])
            return 403, [(b"content-type", PROBLEM_JSON.encode())], problem_body(403, code, title)
        page = templates.render(
            request, "errors/error.html", {"code": code, "message": MESSAGES[code]}, status_code=403
        )
        return 403, [(b"content-type", b"text/html; charset=utf-8")], bytes(page.body)

    app.add_middleware(SecurityMiddleware, settings=settings, refuse=refuse_csrf)
    # Pages and files travel compressed: on weak 3G in the mountains bytes are what the resident waits for.
    app.add_middleware(GZipMiddleware, minimum_size=500)

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        return error_response(request, templates, exc.code, exc.status, exc.detail, exc.extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return error_response(request, templates, ErrorCode.invalid_input, 422, None, {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = ErrorCode.not_found if exc.status_code == 404 else ErrorCode.invalid_input
        if exc.status_code == 405:
            return error_response(request, templates, ErrorCode.invalid_input, 405, None, {})
        return error_response(request, templates, code, exc.status_code, None, {})

    return app


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def error_response(
    request: Request,
    templates: Templates,
    code: ErrorCode,
    status: int,
    detail: str | None,
    extra: dict[str, Any],
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
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        if "retry_after" in extra:
            headers["Retry-After"] = str(extra["retry_after"])
        return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)
    if code == ErrorCode.login_required:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    context = {"code": code, "message": MESSAGES[code], "detail": detail, **extra}
    retry = {"Retry-After": str(extra["retry_after"])} if "retry_after" in extra else None
    return templates.render(
        request, "errors/error.html", context, status_code=status or STATUS[code], headers=retry
    )


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory server.app:app_from_env` (each worker builds its own app)."""
    return create_app(Settings.from_env())
