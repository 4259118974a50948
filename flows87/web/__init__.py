"""The investigators' case app: `flows87 serve` (see flows87/web/app.py)."""

from flows87.web.app import create_app
from flows87.web.security import WebSettings

__all__ = ["WebSettings", "create_app"]
