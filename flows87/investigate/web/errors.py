"""The case app's error responses: the sign-in redirect and the error pages.

An error page for everything refused or failed: role, CSRF, the store's workflow errors, bad
input, unknown pages.

Pages answer with HTML; the graph endpoint (and anything asking for JSON) gets a 401 in JSON
instead of the login redirect, as a script cannot follow it.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from flows87.investigate.store import NotFound, PermissionDenied, StoreError, WorkflowError
from flows87.investigate.web.dependencies import (
    CsrfFailed,
    Forbidden,
    LoginRequired,
    current_user,
    render,
)

STORE_ERROR_TITLES = {
    400: "Cannot do that",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
}


def error_page(
    request: Request, status_code: int, title: str, message: str, back: str | None = None
) -> HTMLResponse:
    """The error page, with the navigation of the signed-in user if the session still has one."""
    user = None
    try:
        user = current_user(request) if request.session.get("uid") else None
    except LoginRequired:
        user = None
    return render(
        request,
        "error.html",
        {
            "title": title,
            "message": message,
            "back": back,
            "status_code": status_code,
            "nav": {},
        },
        status_code=status_code,
        user=user,
    )


def wants_json(request: Request) -> bool:
    return request.url.path.endswith("/graph") or "application/json" in request.headers.get(
        "accept", ""
    )


async def login_required(request: Request, exc: Exception) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": "sign in first"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/cases"
    return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)


async def forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    return error_page(request, 403, "Not allowed", exc.message)


async def csrf_failed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CsrfFailed)
    return error_page(request, 403, "Request refused", exc.message)


async def store_error(request: Request, exc: Exception) -> Response:
    """The store's refusals by kind; on a case's action, the page links back to the case."""
    assert isinstance(exc, StoreError)
    status = 400
    if isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, PermissionDenied):
        status = 403
    elif isinstance(exc, WorkflowError):
        status = 409
    m = re.match(r"^/cases/([^/]+)/", request.url.path)
    back = f"/cases/{m.group(1)}" if m else None
    return error_page(request, status, STORE_ERROR_TITLES[status], exc.message, back)


async def invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', [])[1:]) or 'request'}: {e.get('msg')}"
        for e in exc.errors()
    )
    return error_page(request, 400, "Bad request", problems[:500])


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return error_page(request, 404, "Not found", "There is no such page.")
    if exc.status_code == 405:
        return error_page(
            request, 405, "Method not allowed", "This address does not take that request."
        )
    return error_page(request, exc.status_code, "Error", str(exc.detail))


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(CsrfFailed, csrf_failed)
    app.add_exception_handler(StoreError, store_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
