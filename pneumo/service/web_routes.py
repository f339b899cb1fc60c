"""The HTTP side of sign-in and the headers every response gets; mounted by serve.py (st.App).

Streamlit's script can read cookies (st.context.cookies) but cannot set one, let alone an
HttpOnly one, so the sign-in cookie is set here:

- POST /api/pneumo/session {"code": ...}: a one-time code the signed-in page got over its
  websocket (pneumo.service.sessions) -> 204 and `Set-Cookie: pneumo_session=<token>; HttpOnly;
  SameSite=Strict; Path=/` (plus Secure behind HTTPS); 403 for a used, stale or unknown code.
- POST /api/pneumo/sign-out: revokes the cookie's token and expires the cookie.

And a small ASGI middleware: every HTTP response says it may be framed only by this site
(`Content-Security-Policy: frame-ancestors 'self'`, `X-Frame-Options: SAMEORIGIN`), `nosniff` and
`Referrer-Policy: no-referrer`; Streamlit's unauthenticated `/_stcore/metrics` answers 404.
No streamlit import: starlette only.
"""
from __future__ import annotations

import json

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pneumo import config
from pneumo.errors import PneumoError
from pneumo.service.sessions import COOKIE, SessionStore

SESSION_PATH, SIGN_OUT_PATH = "/api/pneumo/session", "/api/pneumo/sign-out"
BLOCKED_PATHS = ("/_stcore/metrics",)
HEADERS = [(b"content-security-policy", b"frame-ancestors 'self'"), (b"x-frame-options", b"SAMEORIGIN"),
           (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
MOUNTED = False
"""True once serve.py has mounted these routes in this process: without them nobody can sign in."""


def _same_origin(request: Request) -> bool:
    """A browser's POST from this site's own page (fetch sends Origin on every POST)."""
    origin, host = request.headers.get("origin"), request.headers.get("host")
    return bool(origin and host) and origin.split("://", 1)[-1] == host


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


async def _session(request: Request) -> Response:
    if not _same_origin(request):
        return Response(status_code=403)
    try:
        code = json.loads((await request.body())[:4096] or b"{}").get("code")
        token = SessionStore().redeem_code(code)
    except (ValueError, AttributeError, PneumoError):
        token = None
    if token is None:
        return Response(status_code=403)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.set_cookie(COOKIE, token, max_age=config.session_hours() * 3600, path="/", httponly=True,
                        samesite="strict", secure=_secure(request))
    return response


async def _sign_out(request: Request) -> Response:
    if not _same_origin(request):
        return Response(status_code=403)
    try:
        SessionStore().revoke(request.cookies.get(COOKIE))
    except PneumoError:
        pass
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request))
    return response


def routes() -> list[Route]:
    global MOUNTED
    MOUNTED = True
    return [Route(SESSION_PATH, _session, methods=["POST"]), Route(SIGN_OUT_PATH, _sign_out, methods=["POST"])]


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response; the blocked paths answer 404."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope.get("path", "").rstrip("/") in BLOCKED_PATHS:
            return await Response(status_code=404)(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in HEADERS if h[0] not in names]
            await send(message)

        return await self.app(scope, receive, send_with_headers)


def middleware() -> list[Middleware]:
    return [Middleware(SecurityHeaders)]
