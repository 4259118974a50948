"""A case's downloads: the goAML report (XML) and its transactions (CSV).

POSTs, CSRF-checked, because each is written to the audit log."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from flows87.investigate.store import StoreError
from flows87.investigate.store import audit as audit_log
from flows87.investigate.web.dependencies import CurrentUser, acting, csrf_protect
from flows87.investigate.web.errors import error_page

router = APIRouter()


def download_name(case_id: str, ext: str) -> str:
    """A file name from a case id that no header or file system misreads."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", case_id)[:100] + ext


def attachment(case_id: str, ext: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{download_name(case_id, ext)}"'}


@router.post("/cases/{case_id}/export/goaml", dependencies=[Depends(csrf_protect)])
def export_goaml_report(request: Request, case_id: str, user: CurrentUser) -> Response:
    """The STR as a download, or a page saying why not: the case is not an approved report
    (403), the FIU's reporting entity or XSD is not configured (503), the report does not
    validate (422). Settings and XSD come from $FLOWS87_GOAML_SETTINGS and $FLOWS87_GOAML_XSD
    (or the settings' `schema`); the web app always validates."""
    from flows87.investigate.export import (
        GoamlNotConfigured,
        GoamlValidationError,
        export_goaml,
        export_refusal,
    )

    back = f"/cases/{case_id}"
    with acting(request, user) as (s, actor):
        refusal = export_refusal(s, case_id, actor.role)
        if refusal is not None:
            return error_page(request, 403, "Export refused", refusal, back)
        try:
            xml, _schema = export_goaml(s, case_id, actor=actor)
        except GoamlNotConfigured as exc:
            return error_page(request, 503, "goAML export not configured", exc.message, back)
        except GoamlValidationError as exc:
            return error_page(request, 422, "The report does not validate", exc.message, back)
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
