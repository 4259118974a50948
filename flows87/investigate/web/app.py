"""The investigators' case app (FastAPI + Jinja2, no JavaScript from elsewhere).

    from flows87.investigate.store import Store
    from flows87.investigate.web import create_app, WebSettings
    app = create_app(Store.open(url), WebSettings(secure_cookies=True))

Pages: /login, /cases (the queue), /cases/{id} (the case: summary, risk, signals, transactions,
timeline, money graph, workflow forms, history), /audit (the audit log), /admin/users (admins).
Every page but /login and /static needs a signed-in user; every POST needs the session's CSRF
token; the workflow functions of flows87.investigate.store check each action's role again. See security.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from flows87 import __version__
from flows87.investigate.store import (
    DISPOSITIONS,
    ROLES,
    STATUSES,
    UNASSIGNED,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Store,
    StoreError,
    User,
    WorkflowError,
    allowed_actions,
    assign,
    audit_entries,
    authenticate,
    case_detail,
    case_graph,
    change_status,
    check_audit,
    close_case,
    comment,
    create_user,
    decide_report,
    get_case,
    list_cases,
    list_users,
    reopen,
    request_report,
    set_active,
    set_password,
    set_role,
    signal_outcomes,
)
from flows87.investigate.store import audit as audit_log
from flows87.investigate.web import data
from flows87.investigate.web.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    LoginLimiter,
    RevokedSessions,
    SecurityHeaders,
    WebSettings,
    new_token,
    safe_next,
    same_token,
)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
RANK = {"investigator": 1, "supervisor": 2, "admin": 3}
DISPOSITION_LABELS = {
    "reported": "reported (STR filed)",
    "false_positive": "false positive",
    "no_further_action": "no further action",
}
STATUS_LABELS = {
    "new": "new",
    "in_review": "in review",
    "escalated": "escalated",
    "closed": "closed",
}
PUBLIC_PATHS = ("/login", "/static", "/healthz")


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
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CsrfFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _pw_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def current_user(request: Request) -> Principal:
    """The dependency every non-public route has: a valid, unexpired session of an active user
    whose password has not changed since signing in."""
    app = request.app
    sess = request.session
    uid = sess.get("uid")
    if not isinstance(uid, int):
        raise LoginRequired()
    settings: WebSettings = app.state.settings
    login_at = sess.get("login_at")
    if (
        not isinstance(login_at, int | float)
        or time.time() - login_at > settings.session_max
        or sess.get("sid") in app.state.revoked
    ):
        sess.clear()
        raise LoginRequired()
    with app.state.store.session() as s:
        user = s.get(User, uid)
        if user is None or not user.active or sess.get("pw") != _pw_fingerprint(user.password_hash):
            sess.clear()
            raise LoginRequired()
        return Principal(user.id, user.username, user.role)


def require(role: str):
    """A dependency: the signed-in user, who must have at least `role`."""

    def dependency(user: Principal = Depends(current_user)) -> Principal:
        if not user.at_least(role):
            raise Forbidden(f"{user.username} ({user.role}) cannot do this: {role} or above only")
        return user

    dependency.__name__ = f"require_{role}"
    return dependency


async def csrf_protect(request: Request) -> None:
    """The dependency every POST route has: the form's (or header's) token must equal the
    session's, and a browser's Origin header must be this site."""
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


# ---------------------------------------------------------------------------------------------
# templates


def _dt(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime(fmt) + (" UTC" if "%H" in fmt else "")
    return str(value)


def _money(value: Any) -> str:
    if value is None:
        return ""
    try:
        return f"{float(value):,.2f}"
    except (TypeError, ValueError):
        return str(value)


def _score(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def _label(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return DISPOSITION_LABELS.get(text) or STATUS_LABELS.get(text) or text.replace("_", " ")


def _pretty(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_pretty(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{_label(k)}: {_pretty(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.2f}"
    if value is None:
        return "—"
    return str(value)


def _changes(before: Any, after: Any) -> list[tuple[str, Any, Any, bool]]:
    """(field, before, after, had_before) for each field an audit entry changed or set."""
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    out = []
    for key in list(after) + [k for k in before if k not in after]:
        old, new = before.get(key), after.get(key)
        if key in before and old == new:
            continue
        if key in ("status", "disposition"):
            old, new = (_label(old) if old else old), (_label(new) if new else new)
        out.append((key, old, new, key in before))
    return out


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True, default=str)


def make_templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(
            ["html", "htm", "xml", "svg"], default=True, default_for_string=True
        ),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        dt=_dt, money=_money, score=_score, label=_label, pretty=_pretty, pjson=_json
    )
    env.globals.update(
        version=__version__, dispositions=DISPOSITIONS, statuses=STATUSES, changes=_changes
    )
    return Jinja2Templates(env=env)


# ---------------------------------------------------------------------------------------------
# the app


def create_app(store: Store, settings: WebSettings | None = None) -> FastAPI:
    """The case app on a store (whose schema must be at head: `flows87 store upgrade`)."""
    settings = settings or WebSettings.from_env()
    app = FastAPI(
        title="flows87 cases",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.store = store
    app.state.settings = settings
    app.state.limiter = LoginLimiter(settings.login_failures, settings.login_window)
    app.state.revoked = RevokedSessions(settings.session_max)
    app.state.write_lock = threading.Lock()  # one workflow write at a time (SQLite, audit chain)
    templates = make_templates()
    app.state.templates = templates

    # middleware: the last added runs first
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=settings.cookie_name,
        max_age=settings.session_idle,
        same_site=settings.same_site,
        https_only=settings.secure_cookies,
    )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    # -- helpers ------------------------------------------------------------------------------

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not isinstance(token, str) or not token:
            token = request.session["csrf"] = new_token()
        return token

    def flash(request: Request, kind: str, text: str) -> None:
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
        ctx = {
            "request": request,
            "user": user,
            "csrf": csrf_token(request),
            "csrf_field": CSRF_FIELD,
            "flashes": request.session.pop("flash", None) or [],
            "nav": context.pop("nav", None),
        }
        if user is not None and ctx["nav"] is None:
            with store.session() as s:
                ctx["nav"] = {"awaiting": data.awaiting_approval_count(s)}
        ctx.update(context)
        return templates.TemplateResponse(
            request, name, ctx, status_code=status_code, headers=headers
        )

    def error_page(
        request: Request, status_code: int, title: str, message: str, back: str | None = None
    ):
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

    @contextmanager
    def acting(user: Principal, write: bool = True) -> Iterator[tuple[Session, User]]:
        """A unit of work with the acting user loaded in it (writes serialised)."""
        lock = app.state.write_lock if write else None
        if lock:
            lock.acquire()
        try:
            with store.session() as s:
                actor = s.get(User, user.id)
                if actor is None or not actor.active:
                    raise LoginRequired()
                yield s, actor
        finally:
            if lock:
                lock.release()

    def back_to(case_id: str) -> str:
        return f"/cases/{quote(case_id, safe='')}"

    # -- errors -------------------------------------------------------------------------------

    def _wants_json(request: Request) -> bool:
        return request.url.path.endswith("/graph") or "application/json" in request.headers.get(
            "accept", ""
        )

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired):
        if _wants_json(request):
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/cases"
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden):
        return error_page(request, 403, "Not allowed", exc.message)

    @app.exception_handler(CsrfFailed)
    async def _csrf_failed(request: Request, exc: CsrfFailed):
        return error_page(request, 403, "Request refused", exc.message)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError):
        status = 400
        if isinstance(exc, NotFound):
            status = 404
        elif isinstance(exc, PermissionDenied):
            status = 403
        elif isinstance(exc, WorkflowError):
            status = 409
        m = re.match(r"^/cases/([^/]+)/", request.url.path)
        back = f"/cases/{m.group(1)}" if m else None
        titles = {
            400: "Cannot do that",
            403: "Not allowed",
            404: "Not found",
            409: "Not possible now",
        }
        return error_page(request, status, titles[status], exc.message, back)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', [])[1:]) or 'request'}: {e.get('msg')}"
            for e in exc.errors()
        )
        return error_page(request, 400, "Bad request", problems[:500])

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return error_page(request, 404, "Not found", "There is no such page.")
        if exc.status_code == 405:
            return error_page(
                request, 405, "Method not allowed", "This address does not take that request."
            )
        return error_page(request, exc.status_code, "Error", str(exc.detail))

    # -- public -------------------------------------------------------------------------------

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"ok": True})

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/cases"):
        if request.session.get("uid"):
            try:
                current_user(request)
                return RedirectResponse(safe_next(next), status_code=303)
            except LoginRequired:
                pass
        return render(request, "login.html", {"next": safe_next(next), "error": None, "nav": {}})

    @app.post("/login", dependencies=[Depends(csrf_protect)])
    def login(
        request: Request,
        username: str = Form("", max_length=200),
        password: str = Form("", max_length=1000),
        next: str = Form("/cases", max_length=2000),
    ):
        limiter: LoginLimiter = app.state.limiter
        ip = _client_ip(request)
        name = username.strip()
        key_user = ("user", name.lower(), ip)
        key_ip = ("ip", ip)
        wait = limiter.take(
            [(key_user, settings.login_failures), (key_ip, settings.login_failures * 10)]
        )
        if wait:
            with app.state.write_lock, store.session() as s:
                audit_log.record(
                    s, "anonymous", "auth.login_blocked", "user", name[:128], {}, {"ip": ip}
                )
            minutes = max(1, round(wait / 60))
            return render(
                request,
                "login.html",
                {
                    "next": safe_next(next),
                    "error": f"Too many failed sign-ins. Try again in about {minutes} minute"
                    f"{'s' if minutes != 1 else ''}.",
                    "username": name,
                    "nav": {},
                },
                status_code=429,
                headers={"Retry-After": str(int(wait))},
            )
        # the password check (argon2, slow on purpose) runs outside the write lock
        with store.session() as s:
            user = authenticate(s, name, password) if name and password else None
            if user is not None:
                uid, fingerprint, who = user.id, _pw_fingerprint(user.password_hash), user.username
        with app.state.write_lock, store.session() as s:
            if user is None:  # the attempt stays counted
                audit_log.record(
                    s, "anonymous", "auth.login_failed", "user", name[:128], {}, {"ip": ip}
                )
            else:
                limiter.reset(key_user)
                limiter.forgive(key_ip)
                audit_log.record(s, who, "auth.login", "user", who, {}, {"ip": ip})
        if user is None:
            return render(
                request,
                "login.html",
                {
                    "next": safe_next(next),
                    "error": "Wrong user name or password.",
                    "username": name,
                    "nav": {},
                },
                status_code=401,
            )
        # a fresh session (no fixation): new id, new CSRF token
        request.session.clear()
        request.session.update(
            uid=uid, pw=fingerprint, login_at=int(time.time()), sid=new_token(), csrf=new_token()
        )
        return RedirectResponse(safe_next(next), status_code=303)

    # -- signed in ----------------------------------------------------------------------------

    @app.post("/logout", dependencies=[Depends(csrf_protect)])
    def logout(request: Request, user: Principal = Depends(current_user)):
        app.state.revoked.revoke(str(request.session.get("sid")))
        with app.state.write_lock, store.session() as s:
            audit_log.record(s, user.username, "auth.logout", "user", user.username, {}, {})
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/")
    def home(user: Principal = Depends(current_user)):
        return RedirectResponse("/cases", status_code=303)

    @app.get("/cases", response_class=HTMLResponse)
    def queue(
        request: Request,
        user: Principal = Depends(current_user),
        status: list[str] = Query(default=[]),
        typology: str = Query("", max_length=64),
        assignee: str = Query("", max_length=64),
        disposition: str = Query("", max_length=32),
        min_risk: float | None = Query(None, ge=0, le=1000),
        max_risk: float | None = Query(None, ge=0, le=1000),
        date_from: str = Query("", max_length=10),
        date_to: str = Query("", max_length=10),
        date_field: str = Query("activity", max_length=16),
        q: str = Query("", max_length=128),
        account: str = Query("", max_length=128),
        awaiting: str = Query("", max_length=1),
        sort: str = Query("-risk", max_length=16),
        page: int = Query(1, ge=1, le=1_000_000),
        page_size: int = Query(settings.page_size, ge=1, le=200),
    ):
        status = [x for x in status if x][:10]
        who = user.username if assignee == "me" else assignee
        filters = {
            "status": status,
            "typology": typology,
            "assignee": assignee,
            "disposition": disposition,
            "min_risk": "" if min_risk is None else min_risk,
            "max_risk": "" if max_risk is None else max_risk,
            "date_from": date_from,
            "date_to": date_to,
            "date_field": date_field,
            "q": q,
            "account": account,
            "awaiting": awaiting,
        }
        with store.session() as s:
            result = list_cases(
                s,
                status=status or None,
                typology=typology or None,
                assignee=who or None,
                disposition=disposition or None,
                min_risk=min_risk,
                max_risk=max_risk,
                date_from=data.parse_day(date_from, "from date"),
                date_to=data.parse_day(date_to, "to date", end=True),
                date_field=date_field or "activity",
                account=account or None,
                search=q or None,
                awaiting_approval=True if awaiting == "1" else None,
                sort=sort,
                page=page,
                page_size=page_size,
            )
            kinds = data.typologies(s)
            users = [u.username for u in list_users(s)]
            counts = data.status_counts(s)
            nav = {"awaiting": data.awaiting_approval_count(s)}

        def link(**changes: Any) -> str:
            params = {k: v for k, v in filters.items() if v not in ("", None, [])}
            params.update(sort=sort, page_size=page_size)
            params.update(changes)
            if params.get("date_field") == "activity":
                params.pop("date_field")
            if params.get("page_size") == settings.page_size:
                params.pop("page_size")
            if params.get("sort") == "-risk":
                params.pop("sort")
            if params.get("page") == 1:
                params.pop("page")
            return "/cases?" + urlencode(params, doseq=True)

        def sort_link(key: str) -> str:
            desc_first = key not in ("case_id", "status", "typology")
            if sort.lstrip("-") == key:
                new = key if sort.startswith("-") else f"-{key}"
            else:
                new = f"-{key}" if desc_first else key
            return link(sort=new, page=1)

        def sort_mark(key: str) -> str:
            if sort.lstrip("-") != key:
                return ""
            return "▼" if sort.startswith("-") else "▲"

        return render(
            request,
            "queue.html",
            {
                "page": result,
                "filters": filters,
                "typologies": kinds,
                "users": users,
                "counts": counts,
                "sort": sort,
                "link": link,
                "sort_link": sort_link,
                "sort_mark": sort_mark,
                "page_size": page_size,
                "unassigned": UNASSIGNED,
                "nav": nav,
            },
            user=user,
        )

    @app.get("/cases/{case_id}", response_class=HTMLResponse)
    def case_page(request: Request, case_id: str, user: Principal = Depends(current_user)):
        with acting(user, write=False) as (s, actor):
            detail = case_detail(s, case_id, rules_dir=settings.rules_dir)
            actions = allowed_actions(s, actor, get_case(s, case_id))
            users = [u.username for u in list_users(s, active_only=True)]
            nav = {"awaiting": data.awaiting_approval_count(s)}
        members = {a["account_id"] for a in detail["accounts"]}
        groups: dict[str, list[dict[str, Any]]] = {}
        for sig in detail["signals"]:
            groups.setdefault(sig["signal_id"], []).append(sig)
        # strongest evidence first: by best score, then by how many accounts it covers
        signal_groups = sorted(
            groups.items(), key=lambda kv: (-max(x["score"] for x in kv[1]), -len(kv[1]), kv[0])
        )
        txn_limit = 1000
        return render(
            request,
            "case.html",
            {
                "d": detail,
                "c": detail["case"],
                "actions": actions,
                "signal_groups": signal_groups,
                "moves": sorted(a.split(":", 1)[1] for a in actions if a.startswith("status:")),
                "users": users,
                "timeline": data.timeline(detail["transactions"], members),
                "txn_limit": txn_limit,
                "summary_lines": [
                    line for line in (detail["case"]["summary"] or "").split("\n") if line.strip()
                ],
                "case_url": back_to(case_id),
                "disposition_labels": DISPOSITION_LABELS,
                "nav": nav,
            },
            user=user,
        )

    @app.get("/cases/{case_id}/graph")
    def case_graph_json(case_id: str, user: Principal = Depends(current_user)):
        with store.session() as s:
            graph = case_graph(s, case_id)
        return JSONResponse(jsonable_encoder(graph))

    # -- workflow (POST, CSRF-checked; the store checks the role of each action again) ---------

    @app.post("/cases/{case_id}/assign", dependencies=[Depends(csrf_protect)])
    def do_assign(
        request: Request,
        case_id: str,
        assignee: str = Form("", max_length=64),
        user: Principal = Depends(current_user),
    ):
        target = user.username if assignee == "me" else (assignee or None)
        with acting(user) as (s, actor):
            assign(s, actor, case_id, target)
        flash(request, "ok", f"Case assigned to {target}." if target else "Case unassigned.")
        return RedirectResponse(back_to(case_id), status_code=303)

    @app.post("/cases/{case_id}/comment", dependencies=[Depends(csrf_protect)])
    def do_comment(
        request: Request,
        case_id: str,
        body: str = Form("", max_length=20_000),
        user: Principal = Depends(current_user),
    ):
        with acting(user) as (s, actor):
            comment(s, actor, case_id, body)
        flash(request, "ok", "Comment added.")
        return RedirectResponse(back_to(case_id) + "#notes", status_code=303)

    @app.post("/cases/{case_id}/status", dependencies=[Depends(csrf_protect)])
    def do_status(
        request: Request,
        case_id: str,
        status: str = Form(..., max_length=16),
        reason: str = Form("", max_length=20_000),
        user: Principal = Depends(current_user),
    ):
        with acting(user) as (s, actor):
            change_status(s, actor, case_id, status, reason=reason or None)
        flash(request, "ok", f"Status changed to {_label(status)}.")
        return RedirectResponse(back_to(case_id), status_code=303)

    @app.post("/cases/{case_id}/close", dependencies=[Depends(csrf_protect)])
    def do_close(
        request: Request,
        case_id: str,
        disposition: str = Form("", max_length=32),
        reason: str = Form("", max_length=20_000),
        user: Principal = Depends(current_user),
    ):
        if not reason.strip():
            raise InvalidInput("a reason is required to close a case")
        with acting(user) as (s, actor):
            if disposition == "reported":
                request_report(s, actor, case_id, reason)
                message = (
                    "Report (STR filed) requested: a supervisor must approve it to close the case."
                )
            else:
                close_case(s, actor, case_id, disposition, reason)
                message = f"Case closed as {_label(disposition)}."
        flash(request, "ok", message)
        return RedirectResponse(back_to(case_id), status_code=303)

    @app.post("/cases/{case_id}/approval", dependencies=[Depends(csrf_protect)])
    def do_decide(
        request: Request,
        case_id: str,
        decision: str = Form(..., max_length=16),
        comment_text: str = Form("", alias="comment", max_length=20_000),
        user: Principal = Depends(require("supervisor")),
    ):
        if decision not in ("approve", "reject"):
            raise InvalidInput("decision must be approve or reject")
        with acting(user) as (s, actor):
            decide_report(s, actor, case_id, decision == "approve", comment_text or None)
        flash(
            request,
            "ok",
            "Report approved: the case is closed as reported (STR filed)."
            if decision == "approve"
            else "Report rejected: the case stays open.",
        )
        return RedirectResponse(back_to(case_id), status_code=303)

    @app.post("/cases/{case_id}/reopen", dependencies=[Depends(csrf_protect)])
    def do_reopen(
        request: Request,
        case_id: str,
        reason: str = Form("", max_length=20_000),
        user: Principal = Depends(require("supervisor")),
    ):
        with acting(user) as (s, actor):
            reopen(s, actor, case_id, reason)
        flash(request, "ok", "Case reopened (in review).")
        return RedirectResponse(back_to(case_id), status_code=303)

    def _filename(case_id: str, ext: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]", "_", case_id)[:100] + ext

    @app.post("/cases/{case_id}/export/goaml", dependencies=[Depends(csrf_protect)])
    def export_goaml_report(case_id: str, user: Principal = Depends(current_user)):
        try:
            from flows87.investigate.export import export_goaml
        except ImportError:  # pragma: no cover - the export package ships with flows87
            raise StoreError("goAML export is not available in this installation") from None
        with acting(user) as (s, actor):
            xml, _schema = export_goaml(s, case_id, actor=actor)
        return Response(
            xml,
            media_type="application/xml",
            headers={
                "Content-Disposition": f'attachment; filename="{_filename(case_id, "-goaml.xml")}"'
            },
        )

    @app.post("/cases/{case_id}/export/csv", dependencies=[Depends(csrf_protect)])
    def export_csv(case_id: str, user: Principal = Depends(current_user)):
        try:
            from flows87.investigate.export import transactions_csv
        except ImportError:  # pragma: no cover
            raise StoreError("CSV export is not available in this installation") from None
        with acting(user) as (s, actor):
            text = transactions_csv(s, case_id)
            audit_log.record(
                s,
                actor,
                "case.exported_csv",
                "case",
                case_id,
                {},
                {"rows": max(0, text.count("\n") - 1)},
            )
        return Response(
            text.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{_filename(case_id, "-transactions.csv")}"'
            },
        )

    # -- audit log ----------------------------------------------------------------------------

    @app.get("/audit", response_class=HTMLResponse)
    def audit_page(
        request: Request,
        user: Principal = Depends(current_user),
        case: str = Query("", max_length=128),
        actor: str = Query("", max_length=64),
        page: int = Query(1, ge=1, le=1_000_000),
        verify: str = Query("", max_length=1),
    ):
        size = 50
        # investigators see the cases' history; supervisors and admins also users and sign-ins
        entity_type = "case" if (case or not user.at_least("supervisor")) else None
        status = None
        with store.session() as s:
            rows = audit_entries(
                s,
                entity_type=entity_type,
                entity_id=case or None,
                actor=actor or None,
                limit=size + 1,
                offset=(page - 1) * size,
            )
            if verify == "1":
                if not user.at_least("supervisor"):
                    raise Forbidden("verifying the audit chain is for supervisors and admins")
                status = check_audit(s)
            nav = {"awaiting": data.awaiting_approval_count(s)}
        more = len(rows) > size
        params = {k: v for k, v in {"case": case, "actor": actor}.items() if v}
        return render(
            request,
            "audit.html",
            {
                "rows": rows[:size],
                "filters": {"case": case, "actor": actor},
                "page": page,
                "prev_link": "/audit?" + urlencode({**params, "page": page - 1})
                if page > 1
                else None,
                "next_link": "/audit?" + urlencode({**params, "page": page + 1}) if more else None,
                "verify_link": "/audit?" + urlencode({**params, "verify": 1}),
                "status": status,
                "nav": nav,
            },
            user=user,
        )

    # -- feedback: which rules produced the decided cases --------------------------------------

    @app.get("/outcomes", response_class=HTMLResponse)
    def outcomes_page(request: Request, user: Principal = Depends(current_user)):
        with store.session() as s:
            rows = signal_outcomes(s).to_dicts()
        try:
            from flows87.investigate.store import rule_info

            titles = {k: v["title"] for k, v in rule_info(settings.rules_dir).items()}
        except Exception:  # descriptions are a nicety here
            titles = {}
        return render(request, "outcomes.html", {"rows": rows, "titles": titles}, user=user)

    # -- users (admins) -----------------------------------------------------------------------

    @app.get("/admin/users", response_class=HTMLResponse)
    def users_page(request: Request, user: Principal = Depends(require("admin"))):
        with store.session() as s:
            users = [
                {
                    "username": u.username,
                    "role": u.role,
                    "active": u.active,
                    "created_at": u.created_at,
                }
                for u in list_users(s)
            ]
        return render(request, "users.html", {"users": users, "roles": ROLES}, user=user)

    @app.post("/admin/users", dependencies=[Depends(csrf_protect)])
    def users_create(
        request: Request,
        username: str = Form(..., max_length=64),
        role: str = Form(..., max_length=16),
        password: str = Form(..., max_length=1000),
        user: Principal = Depends(require("admin")),
    ):
        with acting(user) as (s, actor):
            create_user(s, username.strip(), role, password, actor=actor)
        flash(request, "ok", f"User {username.strip()} created.")
        return RedirectResponse("/admin/users", status_code=303)

    @app.post("/admin/users/{username}", dependencies=[Depends(csrf_protect)])
    def users_update(
        request: Request,
        username: str,
        role: str = Form("", max_length=16),
        active: str = Form("", max_length=1),
        password: str = Form("", max_length=1000),
        user: Principal = Depends(require("admin")),
    ):
        done = []
        with acting(user) as (s, actor):
            if role:
                set_role(s, username, role, actor=actor)
                done.append(f"role {role}")
            if active in ("0", "1"):
                if username == user.username and active == "0":
                    raise InvalidInput("you cannot deactivate yourself")
                set_active(s, username, active == "1", actor=actor)
                done.append("activated" if active == "1" else "deactivated")
            if password:
                set_password(s, username, password, actor=actor)
                done.append("password set")
        flash(request, "ok", f"User {username}: {', '.join(done) or 'nothing changed'}.")
        return RedirectResponse("/admin/users", status_code=303)

    return app
