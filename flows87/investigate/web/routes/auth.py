"""Signing in and out: the login page and form, and logout.

Sign-ins are limited per user and address, per address and per account (counted in the store,
so every server process sees the same counts: security.LoginLimiter). The audit log gets one
entry per user and address per window for failures (the first, with the window's length), one
when a limit blocks (with the failures counted), and the sign-in with the failures before it;
attempts refused while blocked are only counted (login_counters.refused), so unauthenticated
requests cannot grow the audit log without bound. A session is a row in the store: logout
revokes it for every process, not only this browser's cookie."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from flows87.investigate.store import audit as audit_log
from flows87.investigate.store import authenticate
from flows87.investigate.store.shared_state import (
    Counted,
    open_session,
    prune_sessions,
    revoke_session,
)
from flows87.investigate.web.dependencies import (
    CurrentUser,
    LoginRequired,
    SettingsDep,
    StoreDep,
    client_ip,
    csrf_protect,
    current_user,
    now,
    pw_fingerprint,
    render,
    writing,
)
from flows87.investigate.web.security import LoginLimiter, WebSettings, new_token, safe_next

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/cases") -> Response:
    if request.session.get("uid"):
        try:
            current_user(request)
            return RedirectResponse(safe_next(next), status_code=303)
        except LoginRequired:
            pass
    return render(request, "login.html", {"next": safe_next(next), "error": None, "nav": {}})


@router.post("/login", dependencies=[Depends(csrf_protect)])
def login(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    username: str = Form("", max_length=200),
    password: str = Form("", max_length=1000),
    next: str = Form("/cases", max_length=2000),
) -> Response:
    limiter: LoginLimiter = request.app.state.limiter
    ip = client_ip(request)
    name = username.strip()
    t = now(request)
    with writing(request) as s:
        wait, counted = limiter.take(s, name, ip, t)
    if wait:
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
            headers={"Retry-After": str(max(1, int(wait)))},
        )
    # the password check (argon2, slow on purpose) runs outside the write lock
    with store.session() as s:
        user = authenticate(s, name, password) if name and password else None
        if user is not None:
            uid, fingerprint, who = user.id, pw_fingerprint(user.password_hash), user.username
    sid = new_token()
    with writing(request) as s:
        if user is None:
            _audit_failure(s, name, ip, counted, settings)
        else:
            before = counted[0].failures - 1 if counted else 0
            limiter.succeeded(s, name, ip)
            prune_sessions(s, t, settings.session_idle, settings.session_max)
            open_session(s, sid, uid, t)
            audit_log.record(
                s, who, "auth.login", "user", who, {}, {"ip": ip, "failed_before": before}
            )
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
        uid=uid, pw=fingerprint, login_at=int(t), seen=int(t), sid=sid, csrf=new_token()
    )
    return RedirectResponse(safe_next(next), status_code=303)


def _audit_failure(
    s: Session, name: str, ip: str, counted: list[Counted], settings: WebSettings
) -> None:
    """The first failure of a user and address in a window, and each limit this failure made
    block, are audited; the failures in between are only counted."""
    entity = name[:128]
    for c in counted:
        scope = c.key.split("|", 1)[0]
        if scope == "user" and c.failures == 1:
            audit_log.record(
                s,
                "anonymous",
                "auth.login_failed",
                "user",
                entity,
                {},
                {"ip": ip, "window_s": settings.login_window, "note": "first in window"},
            )
        if c.blocked_now:
            until = datetime.fromtimestamp(c.blocked_until, UTC).isoformat(timespec="seconds")
            audit_log.record(
                s,
                "anonymous",
                "auth.login_blocked",
                "address" if scope == "ip" else "user",
                ip if scope == "ip" else entity,
                {},
                {"ip": ip, "scope": scope, "failures": c.failures, "until": until},
            )


@router.post("/logout", dependencies=[Depends(csrf_protect)])
def logout(request: Request, user: CurrentUser) -> Response:
    with writing(request) as s:
        revoke_session(s, str(request.session.get("sid")), now(request))
        audit_log.record(s, user.username, "auth.logout", "user", user.username, {}, {})
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/session/alive", include_in_schema=False)
def session_alive(user: CurrentUser) -> Response:
    """The pages' keep-alive (static/alive.js): reading a long case or typing a note makes no
    request, so without it the idle timeout signs out someone at work. Being signed in is the
    whole answer; the dependency refreshes the session's last-seen time."""
    return Response(status_code=204)
