"""The investigators' case app (FastAPI + Jinja2, no JavaScript from elsewhere): create_app.

    from flows87.investigate.store import Store
    from flows87.investigate.web import create_app, WebSettings
    app = create_app(Store.open(url), WebSettings(secure_cookies=True))

Pages: /login, /cases (the queue), /cases/{id} (the case: summary, risk, signals, transactions,
timeline, money graph, workflow forms, history), /audit (the audit log), /outcomes, /admin/users
(admins); the routes are in flows87/investigate/web/routes/, one router per page family. Every
page but /login, /healthz and /static needs a signed-in user; every POST needs the session's CSRF
token; the workflow functions of flows87.investigate.store check each action's role again. See
dependencies.py and security.py. Several server processes may serve one store: login limits,
sessions and the write lock are in the store, not in a process.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from flows87 import __version__
from flows87.investigate.store import Store
from flows87.investigate.web.dependencies import csrf_protect, current_user
from flows87.investigate.web.errors import add_error_handlers
from flows87.investigate.web.routes import ROUTERS
from flows87.investigate.web.security import (
    ClientAddress,
    LoginLimiter,
    RequestGuard,
    SecurityHeaders,
    WebSettings,
)
from flows87.investigate.web.templating import make_templates

__all__ = ["create_app", "csrf_protect", "current_user"]

STATIC = Path(__file__).resolve().parent / "static"


def clock() -> float:
    """The sessions' clock: this module's `time.time`, looked up on each call (so a test can
    move it by replacing `time` here)."""
    return time.time()


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
    # what the routes find on request.app.state (see dependencies.py)
    app.state.store = store
    app.state.settings = settings
    # login counters and sessions live in the store, shared by every server process
    app.state.limiter = LoginLimiter(settings)
    # one write at a time in this process (the store serialises writers across processes)
    app.state.write_lock = threading.Lock()
    app.state.templates = make_templates()
    app.state.clock = clock

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
    app.add_middleware(RequestGuard, max_body=settings.max_body)
    app.add_middleware(ClientAddress, trusted=settings.trusted_proxies)
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
