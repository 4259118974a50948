"""The resolved parties of a case, as the case page's "Parties" card shows them.

One person's accounts at several banks, the names the reports wrote them as, and the evidence
for each link in words ("same passport number, name 0.93 similar, different phone"): what
tells an investigator that the accounts the case names are one person's.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flows87.investigate.store.models import CaseParty, CasePartyLink


def case_parties(session: Session, case_id: str) -> list[dict[str, Any]]:
    """The case's parties in case order, each with accounts, banks, names and links."""
    parties = session.scalars(
        select(CaseParty).where(CaseParty.case_id == case_id).order_by(CaseParty.position)
    ).all()
    if not parties:
        return []
    links: dict[str, list[dict[str, Any]]] = {}
    for link in session.scalars(
        select(CasePartyLink)
        .where(CasePartyLink.case_id == case_id)
        .order_by(CasePartyLink.party_id, CasePartyLink.seq)
    ):
        links.setdefault(link.party_id, []).append(
            {
                "record_l": link.record_l,
                "record_r": link.record_r,
                "name_l": link.name_l,
                "name_r": link.name_r,
                "account_l": link.account_l,
                "account_r": link.account_r,
                "bank_l": link.bank_l,
                "bank_r": link.bank_r,
                "probability": link.probability,
                "match_weight": link.match_weight,
                "explanation": link.explanation,
                "n_pairs": link.n_pairs,
            }
        )
    out = []
    for p in parties:
        accounts = json.loads(p.accounts or "[]")
        out.append(
            {
                "party_id": p.party_id,
                "kind": p.kind,
                "n_records": p.n_records,
                "n_links": p.n_links,
                "names": json.loads(p.names or "[]"),
                "accounts": accounts,
                "banks": sorted({a["bank_id"] for a in accounts if a.get("bank_id")}),
                "links": links.get(p.party_id, []),
            }
        )
    return out
