"""Errors of the case store's services. Each is a Flows87Error: the CLI prints the message and
exits 2; the web layer maps NotFound to 404, PermissionDenied to 403 and the others to 400/409."""

from __future__ import annotations

from flows87.errors import Flows87Error


class StoreError(Flows87Error):
    """A request the case store refuses (bad value, wrong state)."""


class NotFound(StoreError):
    """No such case, user or approval."""


class PermissionDenied(StoreError):
    """The acting user's role (or assignment) does not allow this action."""


class WorkflowError(StoreError):
    """An action the case's current state does not allow, e.g. an invalid status transition."""


class InvalidInput(StoreError):
    """A missing or malformed value: a close without reason, an unknown disposition, a bad filter."""
