"""What every route of the case app shares: the signed-in user, CSRF, the store, rendering.

The dependencies (the signed-in user, its role, the CSRF check, the store and the settings), the
units of work on the store, and rendering a page with what every page needs.

Routers find the app's store, settings, templates and locks on `request.app.state` (create_app
puts them there), so one module of routes serves any number of apps.

Every page but /login, /healthz and /static depends on `current_user` (directly or through
`require`); every POST on `csrf_protect`. The workflow functions of flows87.investigate.store
check each action's role again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from flows87.investigate.store import InvalidInput, Store, User
from flows87.investigate.store.shared_state import session_row, touch_session
from flows87.investigate.web import data
from flows87.investigate.web.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    WebSettings,
    bad_char,
    new_token,
    same_token,
)

RANK = {"investigator": 1, "supervisor": 2, "admin": 3}
PUBLIC_PATHS = ("/login", "/static", "/healthz")


# ---------------------------------------------------------------------------------------------
# the app's state


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_settings(request: Request) -> WebSettings:
    return request.app.state.settings


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[WebSettings, Depends(get_settings)]


def now(request: Request) -> float:
    """The app's clock (seconds since the epoch): sessions' age is measured with it."""
    return request.app.state.clock()


# ---------------------------------------------------------------------------------------------
# who is asking


@dataclass(frozen=True)
class Principal:
    """The signed-in user of a request (checked against the store on every request)."""

    id: int
    username: str
    role: str

    def at_least(self, role: str) -> bool:
        return RANK.get(self.role, 0) >= RANK[role]


class LoginRequired(Exception):
    """No valid session: pages redirect to the login page."""


class Forbidden(Exception):
    """A signed-in user asked for what their role does not allow: an error page (403)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CsrfFailed(Exception):
    """A POST without the session's token, or from another site: an error page (403)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def pw_fingerprint(password_hash: str) -> str:
    """Kept in the session so that changing a password ends the sessions signed in with the old."""
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


def client_ip(request: Request) -> str:
    """The client's address (X-Forwarded-For already applied from trusted proxies only: see
    security.ClientAddress)."""
    return request.client.host if request.client else "unknown"


def current_user(request: Request) -> Principal:
    """The dependency every non-public route has: a valid, unexpired session, not signed out
    in any process, of an active user whose password has not changed since signing in. Keeps
    the session alive (its last-seen time and cookie) at most every `session_refresh` s."""
    app = request.app
    sess = request.session
    uid, sid = sess.get("uid"), sess.get("sid")
    if not isinstance(uid, int) or not isinstance(sid, str):
        raise LoginRequired()
    settings: WebSettings = app.state.settings
    login_at = sess.get("login_at")
    t = now(request)
    if not isinstance(login_at, int | float) or t - login_at > settings.session_max:
        sess.clear()
        raise LoginRequired()
    with app.state.store.session() as s:
        user = s.get(User, uid)
        row = session_row(s, sid)
        if (
            user is None
            or not user.active
            or sess.get("pw") != pw_fingerprint(user.password_hash)
            or row is None
            or row.revoked
            or row.user_id != uid
            or t - row.last_seen > settings.session_idle
        ):
            sess.clear()
            raise LoginRequired()
        principal = Principal(user.id, user.username, user.role)
        stale = t - row.last_seen >= settings.session_refresh
    if stale:
        try:
            with app.state.store.session(write=True) as s:
                touch_session(s, sid, t)
        except OperationalError:  # the store is busy writing: the next request will do
            return principal
        sess["seen"] = int(t)  # re-signs the cookie, whose own age limit is session_idle
    return principal


def require(role: str) -> Callable[[Principal], Principal]:
    """A dependency: the signed-in user, who must have at least `role`."""

    def dependency(user: Principal = Depends(current_user)) -> Principal:
        if not user.at_least(role):
            raise Forbidden(f"{user.username} ({user.role}) cannot do this: {role} or above only")
        return user

    dependency.__name__ = f"require_{role}"
    return dependency


CurrentUser = Annotated[Principal, Depends(current_user)]
Supervisor = Annotated[Principal, Depends(require("supervisor"))]
Admin = Annotated[Principal, Depends(require("admin"))]


# ---------------------------------------------------------------------------------------------
# CSRF


async def csrf_protect(request: Request) -> None:
    """The dependency every POST route has: the form's (or header's) token must equal the
    session's, and a browser's Origin header must be this site. Text with control characters
    (which PostgreSQL or an XML export would refuse later, as a 500) is refused here, with a
    message (400)."""
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "")
        parts = urlsplit(origin)
        if origin == "null" or parts.netloc.lower() != host.lower():
            raise CsrfFailed("the request came from another site (Origin does not match)")
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = request.headers.get(CSRF_HEADER)
    if not same_token(token, request.session.get("csrf")):
        raise CsrfFailed(
            "the form's security token is missing or out of date: reload the page and try again"
        )
    for key, value in form.multi_items():
        char = bad_char(value) if isinstance(value, str) else None
        if char:
            raise InvalidInput(
                f"the form's {key[:40].replace('_', ' ')} contains a control character ({char}) "
                "that cannot be stored: remove it and send the form again"
            )


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (every rendered form carries it)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = request.session["csrf"] = new_token()
    return token


# ---------------------------------------------------------------------------------------------
# units of work


@contextmanager
def acting(request: Request, user: Principal, write: bool = True) -> Iterator[tuple[Session, User]]:
    """A unit of work with the acting user loaded in it. Writes are serialised: in this
    process by the write lock, across processes by the store (BEGIN IMMEDIATE on SQLite, an
    advisory lock on PostgreSQL)."""
    lock: AbstractContextManager[Any] = request.app.state.write_lock if write else nullcontext()
    with lock, get_store(request).session(write=write) as s:
        actor = s.get(User, user.id)
        if actor is None or not actor.active:
            raise LoginRequired()
        yield s, actor


@contextmanager
def writing(request: Request) -> Iterator[Session]:
    """A unit of work under the write locks, for writes without an acting user (sign-ins)."""
    with request.app.state.write_lock, get_store(request).session(write=True) as s:
        yield s


# ---------------------------------------------------------------------------------------------
# pages


def flash(request: Request, kind: str, text: str) -> None:
    """A message for the next page this session renders (the last four are kept)."""
    items = list(request.session.get("flash") or [])[-3:]
    items.append([kind, text[:400]])
    request.session["flash"] = items


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    status_code: int = 200,
    user: Principal | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A template with what every page needs: the user, the CSRF token, the flashes and the
    navigation counts (read here unless the context brings its `nav`)."""
    ctx = {
        "request": request,
        "user": user,
        "csrf": csrf_token(request),
        "csrf_field": CSRF_FIELD,
        "flashes": request.session.pop("flash", None) or [],
        "nav": context.pop("nav", None),
        # static/alive.js: how often a reader's activity refreshes the session, in seconds
        "keepalive": max(1, int(request.app.state.settings.session_refresh)),
    }
    if user is not None and ctx["nav"] is None:
        with get_store(request).session() as s:
            ctx["nav"] = {"awaiting": data.awaiting_approval_count(s)}
    ctx.update(context)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers)


def case_url(case_id: str) -> str:
    return f"/cases/{quote(case_id, safe='')}"
