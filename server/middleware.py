"""One pure ASGI middleware (cheap on the check-in hot path): CSRF, security headers, cookie renewal.

HSTS goes on every answer to a request that came over https: directly, or through a reverse proxy that
uvicorn trusts (`--proxy-headers`, on by default, believes X-Forwarded-Proto from FORWARDED_ALLOW_IPS,
127.0.0.1 unless set), which then sets the scope's scheme. Never over plain http (RFC 6797, section 7.2).
Whatever a logged-in staff member is sent (pages, API answers, exports) gets `Cache-Control: no-store`,
so that a shared computer's cache or a proxy keeps no copy of names and figures after they log out."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.auth import KIOSK_COOKIE, SESSION_COOKIE
from server.config import Settings
from server.services import audit

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CSP.encode()),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")
NO_STORE = (b"cache-control", b"no-store")
# A page that sets its own, narrower-purpose policy (the kiosk's, which lets WebAssembly compile) keeps it.
_HEADERS_WITHOUT_CSP = _SECURITY_HEADERS[:-1]


def cross_origin(headers: dict[bytes, bytes], allowed_origins: frozenset[str]) -> bool:
    """True when a browser tells us this unsafe request was started by another site.

    The same checks as Go's CrossOriginProtection: Sec-Fetch-Site when the browser sends it, else Origin
    against our own host. Requests with neither header come from non-browser clients, which hold no
    ambient cookies an attacker could ride on; bearer-token requests are never cross-site forgeries.
    """
    if headers.get(b"authorization", b"").lower().startswith(b"bearer "):
        return False
    site = headers.get(b"sec-fetch-site")
    if site is not None:
        return site not in (b"same-origin", b"none")
    origin = headers.get(b"origin")
    if origin is None:
        return False
    parsed = urlsplit(origin.decode("latin-1"))
    host = headers.get(b"host", b"").decode("latin-1")
    return parsed.netloc != host and origin.decode("latin-1") not in allowed_origins


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, refuse: Any) -> None:
        self.app = app
        self.settings = settings
        # refuse(scope) -> (status, headers, body): the page or problem document for a refused request.
        self.refuse = refuse
        base = urlsplit(settings.base_url)
        self.allowed_origins = frozenset({f"{base.scheme}://{base.netloc}"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        https = [HSTS] if scope.get("scheme") == "https" else []
        if scope["method"] in UNSAFE_METHODS and cross_origin(headers, self.allowed_origins):
            status, extra_headers, body = self.refuse(scope)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [*extra_headers, *_SECURITY_HEADERS, *https],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        state = scope.setdefault("state", {})
        # Static URLs carry their version (?v=...): phones may keep them for a year without asking again.
        immutable = scope["path"].startswith("/static/") and b"v=" in scope.get("query_string", b"")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = list(message.get("headers", []))
                own_csp = any(name.lower() == b"content-security-policy" for name, _ in out)
                out.extend(_HEADERS_WITHOUT_CSP if own_csp else _SECURITY_HEADERS)
                out.extend(https)
                if immutable and message.get("status") == 200:
                    out.append((b"cache-control", b"public, max-age=31536000, immutable"))
                elif state.get("staff") is not None:
                    # Set by deps.optional_staff once a route has looked the staff member up.
                    out = [(name, value) for name, value in out if name.lower() != b"cache-control"]
                    out.append(NO_STORE)
                token = state.get("renewed_session_token")
                if token:
                    out.append((b"set-cookie", session_cookie(token, self.settings).encode("latin-1")))
                message["headers"] = out
            await send(message)

        await self.app(scope, receive, send_with_headers)


def session_cookie(token: str, settings: Settings, *, max_age: int | None = None) -> str:
    """The Set-Cookie value for the staff session (HttpOnly, SameSite=Lax, Secure under https)."""
    max_age = settings.session_hours * 3600 if max_age is None else max_age
    parts = [f"{SESSION_COOKIE}={token}", "Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={max_age}"]
    if settings.secure_cookies:
        parts.append("Secure")
    return "; ".join(parts)


KIOSK_MAX_AGE = 400 * 24 * 3600  # the longest browsers keep a cookie


def kiosk_cookie(token: str, settings: Settings) -> str:
    """The Set-Cookie value for a kiosk's device token: long-lived, HttpOnly, SameSite=Lax, Secure under
    https (revoking the device, not the cookie's age, is what ends it)."""
    parts = [f"{KIOSK_COOKIE}={token}", "Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={KIOSK_MAX_AGE}"]
    if settings.secure_cookies:
        parts.append("Secure")
    return "; ".join(parts)


def problem_body(status: int, code: str, title: str, detail: str | None = None, **extra: Any) -> bytes:
    document = {"type": f"urn:diemdanh:problem:{code}", "title": title, "status": status, "code": code}
    if detail:
        document["detail"] = detail
    document.update(extra)
    return json.dumps(document, ensure_ascii=False).encode()


class AddressMiddleware:
    """Remembers the client address of each request for the audit log (services/audit.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        token = audit.request_address.set(client[0] if client else "")
        try:
            await self.app(scope, receive, send)
        finally:
            audit.request_address.reset(token)
