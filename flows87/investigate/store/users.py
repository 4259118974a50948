"""Users of the case app: username, role (investigator, supervisor, admin), argon2 password hash,
active flag. `authenticate` is what a login form calls."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from flows87.investigate.store import audit
from flows87.investigate.store.errors import InvalidInput, NotFound, PermissionDenied
from flows87.investigate.store.models import ROLES, User, utcnow

MIN_PASSWORD = 8
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")
_hasher = PasswordHasher()
# verified against when the user does not exist, so a login takes as long either way
_DUMMY = _hasher.hash("flows87-no-such-user")


def use_password_hasher(hasher: PasswordHasher) -> None:
    """Replace the argon2 parameters (tests use cheap ones; the default is argon2-cffi's
    RFC 9106 low-memory profile). Hashes made with other parameters still verify and are
    re-hashed at the next successful login."""
    global _hasher, _DUMMY
    _hasher = hasher
    _DUMMY = hasher.hash("flows87-no-such-user")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def _require_admin(actor: User | None) -> None:
    """None means the operator at the command line (trusted, like `createuser`)."""
    if actor is not None and not (actor.active and actor.role == "admin"):
        raise PermissionDenied(f"{actor.username} ({actor.role}) cannot manage users: admin only")


def _user_state(u: User) -> dict:
    return {"username": u.username, "role": u.role, "active": u.active}


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def get_user_by_id(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


def list_users(session: Session, *, active_only: bool = False) -> list[User]:
    stmt = select(User).order_by(User.username)
    if active_only:
        stmt = stmt.where(User.active.is_(True))
    return list(session.scalars(stmt))


def create_user(
    session: Session, username: str, role: str, password: str, *, actor: User | None = None
) -> User:
    """A new active user. `actor` None = the command line; otherwise an admin."""
    _require_admin(actor)
    if not USERNAME.match(username or ""):
        raise InvalidInput(
            f"username {username!r} must be 2-64 letters, digits or . _ @ - (starting with a "
            "letter or digit)"
        )
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise InvalidInput(f"user {username!r} already exists")
    user = User(
        username=username,
        role=role,
        password_hash=hash_password(password),
        active=True,
        created_at=utcnow(),
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.created", "user", username, {}, _user_state(user))
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, else None (unknown user, wrong password
    and inactive user are indistinguishable to the caller, and take the same time)."""
    user = session.scalar(select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def set_password(
    session: Session, username: str, password: str, *, actor: User | None = None
) -> None:
    """Admins (or the CLI) set anyone's password; a user may set their own."""
    user = get_user(session, username)
    if actor is not None and actor.id != user.id:
        _require_admin(actor)
    user.password_hash = hash_password(password)
    audit.record(session, actor, "user.password_set", "user", username, {}, {})


def set_role(session: Session, username: str, role: str, *, actor: User | None = None) -> User:
    _require_admin(actor)
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    user = get_user(session, username)
    before = _user_state(user)
    user.role = role
    audit.record(session, actor, "user.role_changed", "user", username, before, _user_state(user))
    return user


def set_active(session: Session, username: str, active: bool, *, actor: User | None = None) -> User:
    _require_admin(actor)
    user = get_user(session, username)
    before = _user_state(user)
    user.active = active
    action = "user.activated" if active else "user.deactivated"
    audit.record(session, actor, action, "user", username, before, _user_state(user))
    return user
