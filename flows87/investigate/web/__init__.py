"""The investigators' case app: `flows87 serve` (see flows87/investigate/web/app.py)."""

from flows87.investigate.web.app import create_app
from flows87.investigate.web.security import WebSettings

__all__ = ["WebSettings", "create_app"]
