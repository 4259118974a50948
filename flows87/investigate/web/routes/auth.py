"""Signing in and out: the login page and form, and logout.

Sign-ins are rate-limited per user and per address, and audited; logout revokes the session,
not only this browser's cookie."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from flows87.investigate.store import audit as audit_log
from flows87.investigate.store import authenticate
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
from flows87.investigate.web.security import LoginLimiter, new_token, safe_next

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
    key_user = ("user", name.lower(), ip)
    key_ip = ("ip", ip)
    wait = limiter.take(
        [(key_user, settings.login_failures), (key_ip, settings.login_failures * 10)]
    )
    if wait:
        with writing(request) as s:
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
            uid, fingerprint, who = user.id, pw_fingerprint(user.password_hash), user.username
    with writing(request) as s:
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
        uid=uid, pw=fingerprint, login_at=int(now(request)), sid=new_token(), csrf=new_token()
    )
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", dependencies=[Depends(csrf_protect)])
def logout(request: Request, user: CurrentUser) -> Response:
    request.app.state.revoked.revoke(str(request.session.get("sid")))
    with writing(request) as s:
        audit_log.record(s, user.username, "auth.logout", "user", user.username, {}, {})
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
