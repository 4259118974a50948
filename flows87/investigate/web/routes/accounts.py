"""An account's page (/accounts/{id}) and the search box's results (/search)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from flows87.investigate.store import NotFound
from flows87.investigate.web import data
from flows87.investigate.web.dependencies import CurrentUser, StoreDep, render
from flows87.investigate.web.lookup import TXN_LIMIT, account_view, search

router = APIRouter()


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
def account_page(request: Request, account_id: str, user: CurrentUser, store: StoreDep) -> Response:
    with store.session() as s:
        view = account_view(s, account_id[:128])
        nav = {"awaiting": data.awaiting_approval_count(s)}
    if view is None:
        raise NotFound(f"no case has account {account_id[:128]!r}")
    return render(
        request,
        "account.html",
        {"a": view, "txn_limit": TXN_LIMIT, "nav": nav},
        user=user,
    )


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, user: CurrentUser, store: StoreDep, q: str = "") -> Response:
    term = q.strip()[:128]
    with store.session() as s:
        found = search(s, term)
        nav = {"awaiting": data.awaiting_approval_count(s)}
    return render(
        request,
        "search.html",
        {"q": term, "found": found, "nav": nav},
        user=user,
    )
