"""User administration (admins only): list, create, change role, active flag or password."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from flows87.investigate.store import (
    ROLES,
    InvalidInput,
    create_user,
    list_users,
    set_active,
    set_password,
    set_role,
)
from flows87.investigate.web.dependencies import (
    Admin,
    StoreDep,
    acting,
    csrf_protect,
    flash,
    render,
)

router = APIRouter()


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, user: Admin, store: StoreDep) -> Response:
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


@router.post("/admin/users", dependencies=[Depends(csrf_protect)])
def users_create(
    request: Request,
    user: Admin,
    username: str = Form(..., max_length=64),
    role: str = Form(..., max_length=16),
    password: str = Form(..., max_length=1000),
) -> Response:
    with acting(request, user) as (s, actor):
        create_user(s, username.strip(), role, password, actor=actor)
    flash(request, "ok", f"User {username.strip()} created.")
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{username}", dependencies=[Depends(csrf_protect)])
def users_update(
    request: Request,
    username: str,
    user: Admin,
    role: str = Form("", max_length=16),
    active: str = Form("", max_length=1),
    password: str = Form("", max_length=1000),
) -> Response:
    done = []
    with acting(request, user) as (s, actor):
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
