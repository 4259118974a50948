"""Security pieces of the case app: settings, CSRF tokens, login limits, sessions shared by
every server process, client addresses behind proxies, request limits, response headers.

- Sessions: a signed cookie (Starlette's SessionMiddleware: HttpOnly, SameSite, Secure when
  configured) holding the session id, the user id, a fingerprint of the password hash (changing
  a password ends every session), the login time (absolute lifetime) and a CSRF token. Each
  session has a row in the store (web_sessions): every process refuses a cookie whose row is
  missing, signed out or idle for `session_idle` seconds. Each authenticated request refreshes
  the row's last-seen time and re-signs the cookie, at most every `session_refresh` seconds, so
  the idle timeout rolls while someone reads.
- CSRF: a synchronizer token per session, in a hidden field of every form, compared in constant
  time on every POST; a cross-site Origin header is refused as well.
- Login limits, counted in the store (login_counters) so that every process sees them: at most
  `login_failures` failed logins per user name and client address in `login_window` seconds,
  ten times that per address for any names, and per account (from any address) from
  `account_failures` on an exponential back-off (`account_backoff` seconds, doubling, at most
  the window). Attempts over a limit are refused with 429 before the password is checked.
- Client addresses: X-Forwarded-For is honoured only from `trusted_proxies`
  (FLOWS87_TRUSTED_PROXIES: addresses or networks, comma-separated; loopback by default).
- Requests: bodies over `max_body` bytes are refused with 413 before anything parses them;
  control characters (other than tab and line breaks) in an address or a form are refused.
- Headers on every response: a Content-Security-Policy without inline scripts or styles,
  X-Frame-Options DENY (and frame-ancestors 'none'), nosniff, no referrer to other sites,
  no caching of pages.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote_to_bytes

from sqlalchemy.orm import Session
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flows87.investigate.store.shared_state import (
    Counted,
    Limit,
    forgive,
    prune_counters,
    reset,
    take_attempt,
)

ENV_SECRET = "FLOWS87_SECRET_KEY"
ENV_SECURE = "FLOWS87_WEB_SECURE_COOKIES"
ENV_PROXIES = "FLOWS87_TRUSTED_PROXIES"
# numeric settings a deployment (or a test starting `flows87 serve`) may set in the environment
ENV_NUMBERS = {
    "session_idle": "FLOWS87_SESSION_IDLE",
    "session_max": "FLOWS87_SESSION_MAX",
    "login_failures": "FLOWS87_LOGIN_FAILURES",
    "login_window": "FLOWS87_LOGIN_WINDOW",
    "account_failures": "FLOWS87_ACCOUNT_FAILURES",
    "account_backoff": "FLOWS87_ACCOUNT_BACKOFF",
    "max_body": "FLOWS87_MAX_BODY",
}
LOOPBACK_PROXIES = ["127.0.0.1", "::1"]
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
    process stops. `secure_cookies` adds the Secure flag (and HSTS): turn it on behind HTTPS.
    Times are in seconds, `max_body` in bytes; see the module's docstring for the rest."""

    secret_key: str = ""
    secure_cookies: bool = False
    same_site: Literal["lax", "strict"] = "lax"
    session_idle: int = 30 * 60
    session_max: int = 12 * 60 * 60
    login_failures: int = 5
    login_window: int = 15 * 60
    account_failures: int = 10
    account_backoff: float = 30.0
    trusted_proxies: list[str] = field(default_factory=lambda: list(LOOPBACK_PROXIES))
    max_body: int = 1_000_000
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
        TrustedProxies(self.trusted_proxies)  # a typo fails at start, not on the first request

    @classmethod
    def from_env(cls, **overrides: Any) -> WebSettings:
        if ENV_SECURE in os.environ and "secure_cookies" not in overrides:
            overrides["secure_cookies"] = _truthy(os.environ[ENV_SECURE])
        if ENV_PROXIES in os.environ and "trusted_proxies" not in overrides:
            proxies = os.environ[ENV_PROXIES].replace(" ", ",").split(",")
            overrides["trusted_proxies"] = [p for p in proxies if p]
        for name, var in ENV_NUMBERS.items():
            if os.environ.get(var) and name not in overrides:
                try:
                    overrides[name] = type(getattr(cls, name))(os.environ[var])
                except ValueError:
                    raise ValueError(f"{var} must be a number, not {os.environ[var]!r}") from None
        return cls(**overrides)

    @property
    def session_refresh(self) -> float:
        """How often a session's last-seen time is written (and its cookie re-signed)."""
        return min(60.0, self.session_idle / 4)

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
    """The login limits of WebSettings over the store's login counters (every process counts
    into the same rows). Each call runs in the caller's write unit of work."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self._pruned_at = 0.0

    def rules(self, name: str, ip: str) -> list[Limit]:
        st = self.settings
        user = name.lower()[:128]
        return [
            Limit(f"user|{user}|{ip}", st.login_failures, st.login_window),
            Limit(f"ip|{ip}", st.login_failures * 10, st.login_window),
            Limit(f"account|{user}", st.account_failures, st.login_window, st.account_backoff),
        ]

    def take(self, session: Session, name: str, ip: str, now: float) -> tuple[float, list[Counted]]:
        """Seconds to wait (0: go ahead, the attempt counted against every limit)."""
        if now - self._pruned_at >= 60:
            self._pruned_at = now
            prune_counters(session, now, self.settings.login_window)
        return take_attempt(session, self.rules(name, ip), now)

    def succeeded(self, session: Session, name: str, ip: str) -> None:
        """A sign-in that worked clears its user and account counters and gives the address
        its attempt back."""
        user_rule, ip_rule, account_rule = self.rules(name, ip)
        reset(session, user_rule.key)
        reset(session, account_rule.key)
        forgive(session, ip_rule)


BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def bad_char(text: str) -> str | None:
    """The first character that cannot be stored or exported (a C0 control other than tab and
    line breaks, a lone surrogate, U+FFFE/U+FFFF: PostgreSQL refuses NUL, XML all of them), as
    U+XXXX; None when there is none."""
    m = BAD_CHARS.search(text)
    return f"U+{ord(m.group(0)):04X}" if m else None


class TrustedProxies:
    """Addresses (or networks) whose X-Forwarded-For header is believed."""

    def __init__(self, entries: list[str]) -> None:
        self.networks = []
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"trusted proxy {entry!r} is not an IP address or network (e.g. 10.0.0.0/8)"
                ) from None

    def trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip().strip("[]"))
        except ValueError:
            return False
        return any(address in n for n in self.networks)

    def client(self, peer: str, forwarded_for: list[str]) -> str:
        """The client's address: the peer, unless it is a trusted proxy; then the nearest
        address in X-Forwarded-For (from the right) that is not a trusted proxy."""
        if not self.trusts(peer):
            return peer
        hops = [h.strip() for v in forwarded_for for h in v.split(",") if h.strip()]
        client = peer
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop.strip("[]"))
            except ValueError:
                break  # garbage from further out: stop at the last address we can believe
            client = hop.strip("[]")
            if not self.trusts(hop):
                break
        return client


class ClientAddress:
    """Sets the request's client address (and scheme) from X-Forwarded-For (-Proto) when the
    peer is a trusted proxy; from anyone else the headers are ignored."""

    def __init__(self, app: ASGIApp, trusted: list[str]) -> None:
        self.app = app
        self.proxies = TrustedProxies(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and self.proxies.trusts(client[0]):
            headers = Headers(scope=scope)
            host = self.proxies.client(client[0], headers.getlist("x-forwarded-for"))
            scope = dict(scope, client=(host, client[1]))
            proto = headers.get("x-forwarded-proto", "").strip().lower()
            if proto in ("http", "https"):
                scope["scheme"] = proto
        await self.app(scope, receive, send)


def _plain_page(status: int, title: str, message: str) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<link rel="stylesheet" href="/static/app.css"></head><body><main>'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        "<p>Your browser's Back button returns to the form as you left it. "
        '<a href="/cases">Cases</a></p>'
        "</main></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={"Connection": "close"})


def too_large(limit: int) -> HTMLResponse:
    size = f"{limit / 1_000_000:g} MB" if limit >= 1_000_000 else f"{limit / 1000:g} kB"
    return _plain_page(
        413,
        "Request too large",
        f"The case app takes requests of at most {size}; this one is larger, so nothing was "
        "saved. Shorten the text (or attach large material elsewhere) and try again.",
    )


class RequestGuard:
    """Refuses, before anything parses them, requests with a body over `max_body` bytes (413;
    a body without Content-Length is read up to the limit, then replayed to the app) and
    addresses with control characters (400)."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = unquote_to_bytes(scope.get("query_string", b"").replace(b"+", b" "))
        if bad_char(scope.get("path", "")) or bad_char(query.decode("utf-8", "replace")):
            page = _plain_page(
                400, "Bad request", "The address contains control characters: remove them."
            )
            await page(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None and not length.strip().isdigit():
            page = _plain_page(400, "Bad request", "The request's Content-Length is not a number.")
            await page(scope, receive, send)
            return
        if length is not None and int(length) > self.max_body:
            await too_large(self.max_body)(scope, receive, send)
            return
        if length is None and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        # a body without a declared size (chunked): read it up to the limit first
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await too_large(self.max_body)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


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
