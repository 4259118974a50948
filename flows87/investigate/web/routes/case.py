"""The case page and its money graph (JSON).

The page: summary, risk, the learned model's score and reasons, signals, accounts, resolved
parties, transactions, timeline, workflow forms, history. The graph: what static/graph.js draws."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, Response

from flows87.errors import ConfigError
from flows87.investigate.export.refusal import export_refusal
from flows87.investigate.store import (
    account_counterparties,
    allowed_actions,
    case_detail,
    case_graph,
    get_case,
    list_users,
    rule_info,
)
from flows87.investigate.store.graph import GRAPH_LIMIT
from flows87.investigate.store.learned import case_model
from flows87.investigate.store.parties import case_parties
from flows87.investigate.store.queries import DETECTOR_INFO
from flows87.investigate.store.workflow import approvers
from flows87.investigate.web import case_view, data, model_view
from flows87.investigate.web.citations import citation_url
from flows87.investigate.web.dependencies import (
    CurrentUser,
    SettingsDep,
    StoreDep,
    acting,
    case_url,
    render,
)
from flows87.investigate.web.lookup import related_cases
from flows87.investigate.web.templating import DISPOSITION_LABELS

TXN_LIMIT = 1000
"""Transactions listed on the case page (the download has them all)."""

router = APIRouter()


def _titles(rules_dir: str | None) -> dict[str, str]:
    """Rule and detector id -> title, for the model's reasons (none when the rules fail to load:
    the page says so already)."""
    try:
        rules = rule_info(rules_dir)
    except ConfigError:
        rules = {}
    return {k: v["title"] for k, v in {**DETECTOR_INFO, **rules}.items() if v.get("title")}


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: str, user: CurrentUser, settings: SettingsDep) -> Response:
    with acting(request, user, write=False) as (s, actor):
        detail = case_detail(s, case_id, rules_dir=settings.rules_dir)
        actions = allowed_actions(s, actor, get_case(s, case_id))
        users = [u.username for u in list_users(s, active_only=True)]
        nav = {"awaiting": data.awaiting_approval_count(s)}
        waiting_on = approvers(s, case_id)
        related = related_cases(s, case_id)
        refusal = export_refusal(s, case_id, user.role)
        parties = case_parties(s, case_id)
        model = model_view.model_card(case_model(s, case_id), _titles(settings.rules_dir))
    c = detail["case"]
    members = {a["account_id"] for a in detail["accounts"]}
    names = {a["account_id"]: a["name"] for a in detail["accounts"]}
    due_days = data.case_due_days()
    c.update(data.case_age(c, datetime.now(UTC), due_days))
    return render(
        request,
        "case.html",
        {
            "d": detail,
            "c": c,
            "actions": actions,
            "signal_groups": case_view.signal_groups(detail["signals"], c["last_ts"], names),
            "evidence_txns": case_view.evidence_txn_ids(detail["signals"]),
            "tidy": case_view.tidy,
            "last_day": c["last_ts"].date() if c["last_ts"] else None,
            "cite": citation_url,
            "moves": sorted(a.split(":", 1)[1] for a in actions if a.startswith("status:")),
            "users": users,
            "approvers": waiting_on,
            "related": related,
            "parties": parties,
            "model": model,
            "case_signal_ids": {sig["signal_id"] for sig in detail["signals"]},
            "export_refusal": refusal,
            "due_days": due_days,
            "timeline": data.timeline(detail["transactions"], members),
            "txn_limit": TXN_LIMIT,
            "summary_lines": [line for line in (c["summary"] or "").split("\n") if line.strip()],
            "case_url": case_url(case_id),
            "disposition_labels": DISPOSITION_LABELS,
            "nav": nav,
        },
        user=user,
    )


@router.get("/cases/{case_id}/graph")
def case_graph_json(
    case_id: str, user: CurrentUser, store: StoreDep, limit: int = GRAPH_LIMIT
) -> Response:
    """The money graph: at most `limit` accounts drawn (10 to 400), the rest as "+N others"."""
    with store.session() as s:
        graph = case_graph(s, case_id, limit=min(max(limit, 10), 400))
    return JSONResponse(jsonable_encoder(graph))


@router.get("/cases/{case_id}/graph/expand/{account_id:path}")
def case_graph_expand(
    case_id: str, account_id: str, user: CurrentUser, store: StoreDep
) -> Response:
    """An account's counterparties from every transaction the store holds (a click on a node)."""
    with store.session() as s:
        found = account_counterparties(s, case_id, account_id[:128])
    return JSONResponse(jsonable_encoder(found))
