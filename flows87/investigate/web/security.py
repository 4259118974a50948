"""Security pieces of the case app: settings, CSRF tokens, login rate limiting, response headers.

- Sessions: a signed cookie (Starlette's SessionMiddleware: HttpOnly, SameSite, Secure when
  configured) holding the user id, a fingerprint of the password hash (changing a password ends
  every session), the login time (absolute lifetime) and a CSRF token. The cookie is re-signed on
  every response, so it also expires after `session_idle` seconds without a request. Logging out
  clears it and revokes its id in this process.
- CSRF: a synchronizer token per session, in a hidden field of every form, compared in constant
  time on every POST; a cross-site Origin header is refused as well.
- Login rate limiting: at most `login_failures` failed logins per user name and client address in
  `login_window` seconds (and ten times that per address for any user names); further attempts
  are refused with 429 before the password is checked.
- Headers on every response: a Content-Security-Policy without inline scripts or styles,
  X-Frame-Options DENY (and frame-ancestors 'none'), nosniff, no referrer to other sites,
  no caching of pages.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ENV_SECRET = "FLOWS87_SECRET_KEY"
ENV_SECURE = "FLOWS87_WEB_SECURE_COOKIES"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class WebSettings:
    """How the case app runs. `secret_key` signs the session cookies: give the same one to every
    process (FLOWS87_SECRET_KEY); without one, a random key is made and sessions end when the
    process stops. `secure_cookies` adds the Secure flag (and HSTS): turn it on behind HTTPS."""

    secret_key: str = ""
    secure_cookies: bool = False
    same_site: Literal["lax", "strict"] = "lax"
    session_idle: int = 30 * 60
    session_max: int = 12 * 60 * 60
    login_failures: int = 5
    login_window: int = 15 * 60
    rules_dir: str | None = None
    allowed_hosts: list[str] = field(default_factory=lambda: ["*"])
    page_size: int = 25

    def __post_init__(self) -> None:
        if not self.secret_key:
            self.secret_key = os.environ.get(ENV_SECRET) or secrets.token_urlsafe(48)
        if len(self.secret_key) < 32:
            raise ValueError("the session secret key needs at least 32 characters")
        if self.same_site not in ("lax", "strict"):
            raise ValueError("same_site must be 'lax' or 'strict'")

    @classmethod
    def from_env(cls, **overrides) -> WebSettings:
        if ENV_SECURE in os.environ and "secure_cookies" not in overrides:
            overrides["secure_cookies"] = _truthy(os.environ[ENV_SECURE])
        return cls(**overrides)

    @property
    def cookie_name(self) -> str:
        # the __Host- prefix makes browsers insist on Secure, Path=/ and no Domain
        return "__Host-flows87" if self.secure_cookies else "flows87_session"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def safe_next(target: str | None, default: str = "/cases") -> str:
    """A local path to go to after login; anything else (other hosts, schemes, `//x`) is
    replaced by the default, so the login page is no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 32 for c in target):
        return default
    return target


class LoginLimiter:
    """Failed logins per key in a sliding window, in memory (one process)."""

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[tuple[str, ...], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, ...], now: float) -> deque[float] | None:
        q = self._failures.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._failures[key]
            return None
        return q

    def blocked(self, key: tuple[str, ...], limit: int | None = None) -> float:
        """Seconds until the next attempt is allowed (0: allowed now)."""
        now = time.monotonic()
        with self._lock:
            q = self._recent(key, now)
            if q is None or len(q) < (limit or self.limit):
                return 0.0
            return max(1.0, q[0] + self.window - now)

    def take(self, keys: list[tuple[tuple[str, ...], int]]) -> float:
        """Check every (key, limit) and, when none is over its limit, count an attempt against
        each, atomically (parallel requests cannot all slip past the check). Returns the
        seconds to wait (0: go ahead). A successful login gives its attempts back (`forgive`)."""
        now = time.monotonic()
        with self._lock:
            wait = 0.0
            for key, limit in keys:
                q = self._recent(key, now)
                if q is not None and len(q) >= limit:
                    wait = max(wait, q[0] + self.window - now, 1.0)
            if wait:
                return wait
            for key, _ in keys:
                q = self._recent(key, now)
                if q is None:
                    q = self._failures[key] = deque()
                q.append(now)
            return 0.0

    def forgive(self, key: tuple[str, ...]) -> None:
        """Take back the latest attempt counted against `key`."""
        with self._lock:
            q = self._failures.get(key)
            if q:
                q.pop()
                if not q:
                    del self._failures[key]

    def fail(self, key: tuple[str, ...]) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) >= self.max_keys:
                for k in list(self._failures)[: self.max_keys // 10]:
                    del self._failures[k]
            q = self._recent(key, now)
            if q is None:
                q = self._failures[key] = deque()
            q.append(now)

    def reset(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._failures.pop(key, None)


class RevokedSessions:
    """Ids of sessions logged out in this process, kept until they would have expired anyway."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._ids: dict[str, float] = {}
        self._lock = threading.Lock()

    def revoke(self, sid: str) -> None:
        now = time.monotonic()
        with self._lock:
            for k, t in list(self._ids.items()):
                if t <= now - self.ttl:
                    del self._ids[k]
            self._ids[sid] = now

    def __contains__(self, sid: object) -> bool:
        with self._lock:
            return sid in self._ids


class SecurityHeaders:
    """Adds the security headers to every response (pages, static files, errors)."""

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                h["Content-Security-Policy"] = CSP
                h["X-Frame-Options"] = "DENY"
                h["X-Content-Type-Options"] = "nosniff"
                h["Referrer-Policy"] = (
                    "same-origin"  # no-referrer would make browsers send Origin: null
                )
                h["Cross-Origin-Opener-Policy"] = "same-origin"
                h["Cross-Origin-Resource-Policy"] = "same-origin"
                h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
                if static:
                    h.setdefault("Cache-Control", "private, max-age=300")
                else:
                    h["Cache-Control"] = "no-store"
                if self.hsts:
                    h["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, send_with_headers)
