"""The case app's routes: one APIRouter per page family, in the order create_app includes them.

health    /healthz (public)
auth      /login, /logout
queue     /, /cases (the queue and its filters)
case      /cases/{id} (the case page), /cases/{id}/graph (its money graph, JSON)
workflow  /cases/{id}/assign, comment, status, close, approval, reopen (POST)
exports   /cases/{id}/export/goaml, /cases/{id}/export/csv (POST, downloads)
audit     /audit (the audit log), /outcomes (which rules produced the decided cases)
users     /admin/users (admins)
accounts  /accounts/{id} (an account across cases), /search (the header's search box)
"""

from fastapi import APIRouter

from flows87.investigate.web.routes import (
    accounts,
    audit,
    auth,
    case,
    exports,
    health,
    queue,
    users,
    workflow,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    auth.router,
    queue.router,
    case.router,
    workflow.router,
    exports.router,
    audit.router,
    users.router,
    accounts.router,
)
