"""What every process of the case app must agree on, kept in the store rather than in memory.

With several server processes (`flows87 serve --workers N`, or several hosts behind one proxy)
a login limit counted in one process's memory is N times weaker, and a session signed out in one
process stays valid in the others. So both live here:

- `login_counters`: failed sign-ins per key ("user|name|ip", "ip|addr", "account|name") in a
  fixed window, with the time the key is blocked until (exponential back-off for accounts);
  rows pruned once quiet for a window, and capped in number.
- `web_sessions`: one row per signed-in session (its id is in the signed cookie): the user, when
  it began, when it was last seen (refreshed at most once a minute: the rolling idle timeout)
  and whether it was signed out. A cookie whose row is missing, revoked or idle is refused by
  every process.

Times are seconds since the epoch (the app's clock) as floats: these rows are compared, never
shown. Callers run these functions in a write unit of work (`Store.session(write=True)`), which
serialises them across processes (SQLite BEGIN IMMEDIATE, a PostgreSQL advisory lock).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    CursorResult,
    Delete,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    delete,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from flows87.investigate.store.models import Base

MAX_COUNTERS = 100_000


class LoginCounter(Base):
    __tablename__ = "login_counters"
    __table_args__ = (Index("ix_login_counters_last_failure", "last_failure"),)

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False)
    refused: Mapped[int] = mapped_column(Integer, nullable=False)
    window_start: Mapped[float] = mapped_column(Float, nullable=False)
    last_failure: Mapped[float] = mapped_column(Float, nullable=False)
    blocked_until: Mapped[float] = mapped_column(Float, nullable=False)


class WebSession(Base):
    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_last_seen", "last_seen"),)

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    last_seen: Mapped[float] = mapped_column(Float, nullable=False)
    revoked: Mapped[bool] = mapped_column(Boolean, nullable=False)


def _deleted(session: Session, stmt: Delete) -> int:
    result = session.execute(stmt)
    return result.rowcount if isinstance(result, CursorResult) else 0


# ---------------------------------------------------------------------------------------------
# login counters


@dataclass(frozen=True)
class Limit:
    """A counter and its rule: `limit` failures in `window` seconds block the key until the
    window ends; with `backoff` seconds, each failure from the limit on blocks it for
    backoff * 2**(failures - limit) seconds (at most `window`) instead."""

    key: str
    limit: int
    window: float
    backoff: float = 0.0


@dataclass(frozen=True)
class Counted:
    """A counter after an attempt was counted: failures in its window, whether this attempt
    blocked it (it reached its limit), and until when."""

    key: str
    failures: int
    blocked_now: bool
    blocked_until: float


def _fresh(row: LoginCounter | None, rule: Limit, now: float) -> LoginCounter | None:
    """The row, unless its window is over (then it counts from zero again)."""
    if row is None or now < row.blocked_until:
        return row
    quiet_since = row.last_failure if rule.backoff else row.window_start
    if now - quiet_since >= rule.window:
        row.failures = row.refused = 0
        row.window_start = now
        row.blocked_until = 0.0
    return row


def take_attempt(session: Session, rules: list[Limit], now: float) -> tuple[float, list[Counted]]:
    """Check every counter and, when none is blocked, count an attempt against each (before the
    password is checked, so parallel attempts cannot slip past). Returns the seconds to wait
    (0: go ahead) and the counters as counted."""
    rows = {
        r.key: _fresh(session.get(LoginCounter, r.key, with_for_update=True), r, now) for r in rules
    }
    wait = max((row.blocked_until - now for row in rows.values() if row is not None), default=0.0)
    if wait > 0:
        for row in rows.values():
            if row is not None and row.blocked_until > now:
                row.refused += 1
        return max(wait, 1.0), []
    counted = []
    for rule in rules:
        row = rows[rule.key]
        if row is None:
            row = LoginCounter(
                key=rule.key,
                failures=0,
                refused=0,
                window_start=now,
                last_failure=now,
                blocked_until=0.0,
            )
            session.add(row)
        row.failures += 1
        row.last_failure = now
        blocked = row.failures >= rule.limit
        if blocked and rule.backoff:
            row.blocked_until = now + min(
                rule.window, rule.backoff * 2 ** (row.failures - rule.limit)
            )
        elif blocked:
            row.blocked_until = row.window_start + rule.window
        counted.append(Counted(rule.key, row.failures, blocked, row.blocked_until))
    session.flush()
    return 0.0, counted


def forgive(session: Session, rule: Limit) -> None:
    """Give back the attempt last counted against the key (a sign-in that succeeded)."""
    row = session.get(LoginCounter, rule.key, with_for_update=True)
    if row is None:
        return
    row.failures = max(0, row.failures - 1)
    if row.failures < rule.limit:
        row.blocked_until = 0.0


def reset(session: Session, key: str) -> None:
    session.execute(delete(LoginCounter).where(LoginCounter.key == key))


def prune_counters(session: Session, now: float, horizon: float, cap: int = MAX_COUNTERS) -> int:
    """Drop counters quiet for `horizon` seconds and not blocked; beyond `cap` rows, the
    longest quiet ones too (a flood of names or addresses cannot grow the table without
    bound). Returns the rows dropped."""
    gone = _deleted(
        session,
        delete(LoginCounter).where(
            LoginCounter.last_failure < now - horizon, LoginCounter.blocked_until < now
        ),
    )
    count = session.scalar(select(func.count()).select_from(LoginCounter)) or 0
    if count > cap:
        cutoff = session.scalar(
            select(LoginCounter.last_failure)
            .order_by(LoginCounter.last_failure.desc())
            .offset(cap)
            .limit(1)
        )
        if cutoff is not None:
            gone += _deleted(
                session, delete(LoginCounter).where(LoginCounter.last_failure <= cutoff)
            )
    return gone


# ---------------------------------------------------------------------------------------------
# sessions


def open_session(session: Session, sid: str, user_id: int, now: float) -> None:
    session.add(WebSession(sid=sid, user_id=user_id, created_at=now, last_seen=now, revoked=False))


def session_row(session: Session, sid: str) -> WebSession | None:
    return session.get(WebSession, sid)


def touch_session(session: Session, sid: str, now: float) -> None:
    row = session.get(WebSession, sid)
    if row is not None and not row.revoked:
        row.last_seen = max(row.last_seen, now)


def revoke_session(session: Session, sid: str, now: float) -> None:
    row = session.get(WebSession, sid)
    if row is not None:
        row.revoked = True
        row.last_seen = now


def prune_sessions(session: Session, now: float, idle: float, lifetime: float) -> int:
    """Drop sessions idle longer than `idle` or older than `lifetime` (their cookies are refused
    anyway: a missing row is as good as a revoked one)."""
    return _deleted(
        session,
        delete(WebSession).where(
            (WebSession.last_seen < now - idle) | (WebSession.created_at < now - lifetime)
        ),
    )
