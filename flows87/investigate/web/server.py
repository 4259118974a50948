"""Running the case app: with uvicorn (`flows87 serve`), or in a background thread (tests).

`serve` is what `flows87 serve` calls; `BackgroundServer` is what the browser tests use.

With `workers` > 1 uvicorn starts that many processes, each building the app with
`app_from_env` from what `serve` put in the environment (the store's URL and the settings,
secret key included, so every worker signs and checks cookies alike). The processes share
login limits, sessions and the write lock through the store. X-Forwarded-For is applied by the
app (security.ClientAddress, from FLOWS87_TRUSTED_PROXIES), not by uvicorn."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import threading
import time
from collections.abc import Sequence

from fastapi import FastAPI

from flows87.investigate.store import Store
from flows87.investigate.web.app import create_app
from flows87.investigate.web.security import WebSettings, is_loopback

LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
ENV_WORKER_APP = "FLOWS87_WEB_WORKER_APP"  # set by serve() for its worker processes only


def default_allowed_hosts(host: str) -> list[str]:
    """Host headers the app answers: the loopback names when bound to loopback (a DNS-rebinding
    page cannot reach it by another name), any otherwise (set --allowed-host in production)."""
    return list(LOOPBACK_HOSTS) if is_loopback(host) else ["*"]


def make_settings(
    host: str,
    *,
    secure_cookies: bool | None = None,
    same_site: str = "lax",
    allowed_hosts: Sequence[str] = (),
    rules_dir: str | None = None,
    secret_key: str = "",
) -> WebSettings:
    overrides: dict = {
        "same_site": same_site,
        "allowed_hosts": list(allowed_hosts) or default_allowed_hosts(host),
        "rules_dir": rules_dir,
        "secret_key": secret_key,
    }
    if secure_cookies is not None:
        overrides["secure_cookies"] = secure_cookies
    return WebSettings.from_env(**overrides)


def serve(
    store: Store,
    host: str,
    port: int,
    settings: WebSettings,
    log_level: str = "info",
    workers: int = 1,
) -> None:
    import uvicorn

    if workers <= 1:
        uvicorn.run(
            create_app(store, settings),
            host=host,
            port=port,
            log_level=log_level,
            server_header=False,
            proxy_headers=False,
        )
        return
    os.environ[ENV_WORKER_APP] = json.dumps(
        {
            "db": store.engine.url.render_as_string(hide_password=False),
            "settings": dataclasses.asdict(settings),
        }
    )
    store.dispose()  # each worker opens its own connections
    uvicorn.run(
        f"{__name__}:app_from_env",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
    )


def app_from_env() -> FastAPI:
    """The app of one worker process of `serve(..., workers=N)`."""
    spec = json.loads(os.environ[ENV_WORKER_APP])
    return create_app(Store.open(spec["db"]), WebSettings(**spec["settings"]))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class BackgroundServer:
    """The app served by uvicorn in a daemon thread on a free loopback port (for tests)."""

    def __init__(
        self, store: Store, settings: WebSettings | None = None, host: str = "127.0.0.1"
    ) -> None:
        import uvicorn

        self.host = host
        self.port = free_port(host)
        self.app = create_app(store, settings or make_settings(host))
        config = uvicorn.Config(
            self.app,
            host=host,
            port=self.port,
            log_level="warning",
            server_header=False,
            proxy_headers=False,  # the app applies X-Forwarded-For (trusted proxies only)
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="flows87-web", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the case app did not start on {self.url}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
