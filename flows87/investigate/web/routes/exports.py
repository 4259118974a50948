"""A case's downloads: the goAML report (XML) and its transactions (CSV).

POSTs, CSRF-checked, because each is written to the audit log."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from flows87.investigate.store import StoreError
from flows87.investigate.store import audit as audit_log
from flows87.investigate.web.dependencies import CurrentUser, acting, csrf_protect

router = APIRouter()


def download_name(case_id: str, ext: str) -> str:
    """A file name from a case id that no header or file system misreads."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", case_id)[:100] + ext


def attachment(case_id: str, ext: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{download_name(case_id, ext)}"'}


@router.post("/cases/{case_id}/export/goaml", dependencies=[Depends(csrf_protect)])
def export_goaml_report(request: Request, case_id: str, user: CurrentUser) -> Response:
    try:
        from flows87.investigate.export import export_goaml
    except ImportError:  # pragma: no cover - the export package ships with flows87
        raise StoreError("goAML export is not available in this installation") from None
    with acting(request, user) as (s, actor):
        xml, _schema = export_goaml(s, case_id, actor=actor)
    return Response(xml, media_type="application/xml", headers=attachment(case_id, "-goaml.xml"))


@router.post("/cases/{case_id}/export/csv", dependencies=[Depends(csrf_protect)])
def export_csv(request: Request, case_id: str, user: CurrentUser) -> Response:
    try:
        from flows87.investigate.export import transactions_csv
    except ImportError:  # pragma: no cover
        raise StoreError("CSV export is not available in this installation") from None
    with acting(request, user) as (s, actor):
        text = transactions_csv(s, case_id)
        audit_log.record(
            s,
            actor,
            "case.exported_csv",
            "case",
            case_id,
            {},
            {"rows": max(0, text.count("\n") - 1)},
        )
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers=attachment(case_id, "-transactions.csv"),
    )
