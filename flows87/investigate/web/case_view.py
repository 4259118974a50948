"""The case page's evidence as investigators read it: each pattern once, in words.

The pipeline writes one signal per member account of a pattern (a fan-in over 19 accounts is 19
signals carrying the same evidence). Here signals are grouped by rule and pattern instance (the
evidence's `instance`, else the identical evidence and transactions), each instance shown once
with its members, per-account detail kept for a click. Sentences get one date format (with the
year), no date after the case's last transaction, singulars after "1", and words for the
evidence's field names.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

HIDDEN_KEYS = {"instance", "role", "accounts", "first_ts", "last_ts"}
"""Evidence keys shown elsewhere: the members list, the role per account, the period."""

EVIDENCE_WORDS = {
    "n_transfers": "transfers",
    "n_parties": "parties",
    "n_surnames": "different surnames",
    "n_payers": "payers",
    "n_senders": "senders",
    "n_receivers": "receivers",
    "n_accounts": "accounts",
    "n_counterparties": "counterparties",
    "n_intermediaries": "intermediaries",
    "n_beneficiaries": "beneficiaries",
    "n_wages": "wage payments",
    "n_deposits": "deposits",
    "n_withdrawals": "withdrawals",
    "n_locations": "locations",
    "n_occasions": "occasions",
    "n_edges": "transfer links",
    "duration_hours": "duration (hours)",
    "total_amount": "total amount",
    "median_amount": "median amount",
    "in_sum": "money in",
    "out_sum": "money out",
    "in_count": "payments in",
    "flow_through": "share passed through",
    "hub": "hub account",
    "payee": "payee account",
    "employer": "employer account",
    "recapturer": "account taking the wages",
    "source": "origin account",
    "target": "destination account",
    "sender": "sender account",
    "funnel": "funnel account",
    "kinds": "kinds of identifier",
    "identifiers": "shared identifiers",
    "strong_identifiers": "strong shared identifiers",
    "shared_identifier": "shared identifier",
    "identifier": "identifier",
    "window": "window",
    "window_days": "window (days)",
    "window_minutes": "window (minutes)",
    "periods_matched": "periods matched",
    "recaptured_amount": "amount taken back",
    "recaptured_fraction": "share of wages taken back",
    "recapturing_workers": "workers paying it back",
    "max_hours_to_recapture": "longest time to pay back (hours)",
    "wages_amount": "wages paid",
    "workers": "workers",
    "share": "share",
    "gathered_amount": "amount gathered",
    "chain_accounts": "accounts in the chain",
    "chain_transfers": "transfers in the chain",
    "hops": "hops",
    "max_hop_hours": "longest hop (hours)",
    "first_amount": "first amount",
    "last_amount": "last amount",
    "retained": "kept back",
    "pass_through_24h": "passed on within 24 hours",
    "pass_through_48h": "passed on within 48 hours",
    "distinct_payers": "different payers",
    "distinct_payees": "different payees",
    "top_payee_share": "share to the top payee",
    "median_dwell_hours": "median time held (hours)",
    "out_in_ratio": "money out / money in",
    "flagged_senders": "flagged senders",
    "mean_share": "mean share",
    "payments_per_sender": "payments per sender",
    "sender_signals": "signals of the senders",
    "account_age_days": "account age (days)",
    "anomaly_score": "anomaly score",
    "reasons": "why it is unusual",
    "models": "detectors",
    "business_type": "business type (MCC)",
    "beneficiary_country": "beneficiary country",
    "sender_countries": "sender countries",
    "location_id": "location",
    "value": "value",
    "density": "density",
    "cv": "variation of the amounts",
    "returned_amount": "amount returned",
    "length": "length",
    "cash_amount": "cash",
    "span_days": "span (days)",
    "first_opened": "first opened",
    "last_opened": "last opened",
    "max_gap_days": "longest gap (days)",
    "max_amount": "largest amount",
    "threshold": "threshold",
}

PLURALS = (
    "payments|transfers|deposits|withdrawals|beneficiaries|accounts|payers|payees|senders|"
    "receivers|individuals|businesses|parties|workers|times|bills|hotels|places|tickets|"
    "branches|locations|counterparties|intermediaries|days|hours|steps|hops|occasions|cards|"
    "signals|merchants|countries"
)
ONE_OF_MANY = re.compile(rf"\b1 ((?:[a-z][a-z/-]* ){{0,2}}?)({PLURALS})\b")
ISO_TIME = re.compile(
    r"\b(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
DAY = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
PYLIST = re.compile(r"\[((?:'[^'\[\]]*'(?:, )?)+)\]")


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "ches", "shes", "xes")):
        return word[:-2]
    return word[:-1]


def tidy(text: str, last_day: date | None = None) -> str:
    """A pipeline sentence for the page: dates as 2026-03-04 and never after `last_day`,
    "1 payment" not "1 payments", Python list brackets as plain lists."""
    text = ISO_TIME.sub(r"\1", text)
    if last_day is not None:
        bound = last_day.isoformat()
        text = DAY.sub(lambda m: bound if m.group(1) > bound else m.group(1), text)
    text = ONE_OF_MANY.sub(lambda m: f"1 {m.group(1)}{_singular(m.group(2))}", text)
    return PYLIST.sub(lambda m: m.group(1).replace("'", ""), text)


def evidence_word(key: str) -> str:
    """An evidence field's name in words."""
    if key in EVIDENCE_WORDS:
        return EVIDENCE_WORDS[key]
    words = key.replace("_", " ")
    if words.startswith("n "):
        words = "number of " + words[2:]
    return words


def _ts(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def clip(value: Any, last: datetime | None) -> datetime | None:
    """A window's end no later than the case's last transaction."""
    ts = _ts(value)
    if ts is None or last is None:
        return ts
    return min(ts, last)


def _instance_key(sig: dict[str, Any]) -> str:
    ev = sig["evidence"] if isinstance(sig["evidence"], dict) else {}
    if ev.get("instance"):
        return str(ev["instance"])
    rest = {k: v for k, v in ev.items() if k != "role"}
    return json.dumps([rest, sorted(sig["txn_ids"] or [])], sort_keys=True, default=str)


def _shared_sentence(sig: dict[str, Any], many: bool) -> str:
    """The sentence of a pattern instance, without the member it was written for."""
    text = sig.get("summary") or ""
    if not many:
        return text
    acc = re.escape(sig["account_id"])
    m = re.match(rf"^Account {acc} \([^)]*\) is part of (.*)$", text, re.S)
    if m:
        rest = m.group(1)
        return rest[:1].upper() + rest[1:]
    m = re.match(rf"^(?:Account|Business) {acc}(?: \([^)]*\))?: (.*)$", text, re.S)
    if m:
        rest = m.group(1)
        return rest[:1].upper() + rest[1:]
    return text


def _fmt(value: Any) -> Any:
    """Evidence values for the page: times as days, lists of "kind:value" readable."""
    if isinstance(value, str) and ISO_TIME.match(value):
        return ISO_TIME.sub(r"\1", value)
    return value


def signal_groups(
    signals: list[dict[str, Any]], last_ts: Any, names: dict[str, str | None] | None = None
) -> list[dict[str, Any]]:
    """Rules with the pattern instances they found, strongest first.

    Each rule: signal_id, rule, family, n_signals, max_score, instances. Each instance: members
    (account, role, score, name), shared evidence as (words, value) pairs, sentence, period
    (start, end clipped at `last_ts`), transactions, typologies, and per account the evidence
    that differs and its own sentence."""
    last = _ts(last_ts)
    last_day = last.date() if last else None
    names = names or {}
    rules: dict[str, dict[str, Any]] = {}
    for sig in signals:
        rule = rules.setdefault(
            sig["signal_id"],
            {
                "signal_id": sig["signal_id"],
                "rule": sig["rule"],
                "family": sig["family"],
                "n_signals": 0,
                "max_score": 0.0,
                "instances": {},
            },
        )
        rule["n_signals"] += 1
        rule["max_score"] = max(rule["max_score"], float(sig["score"] or 0.0))
        rule["instances"].setdefault(_instance_key(sig), []).append(sig)
    out = []
    for rule in rules.values():
        instances = [
            _instance(group, last, last_day, names) for group in rule["instances"].values()
        ]
        instances.sort(key=lambda i: (-i["score"], -len(i["members"]), i["members"][0]["account"]))
        rule["instances"] = instances
        out.append(rule)
    out.sort(
        key=lambda r: (
            -r["max_score"],
            -max(len(i["members"]) for i in r["instances"]),
            r["signal_id"],
        )
    )
    return out


def _instance(
    group: list[dict[str, Any]],
    last: datetime | None,
    last_day: date | None,
    names: dict[str, str | None],
) -> dict[str, Any]:
    first = group[0]
    evs = [g["evidence"] if isinstance(g["evidence"], dict) else {} for g in group]
    keys = sorted({k for ev in evs for k in ev} - HIDDEN_KEYS)
    shared_keys = [k for k in keys if all(ev.get(k) == evs[0].get(k) for ev in evs)]
    differing = [k for k in keys if k not in shared_keys]
    start = _ts(first["window_start"]) or _ts(evs[0].get("first_ts"))
    end = clip(first["window_end"] or evs[0].get("last_ts"), last)
    txns: list[str] = []
    seen: set[str] = set()
    for g in group:
        for t in g["txn_ids"] or []:
            if t not in seen:
                seen.add(t)
                txns.append(t)
    many = len(group) > 1
    members = [
        {
            "account": g["account_id"],
            "name": names.get(g["account_id"]),
            "role": (g["evidence"] or {}).get("role") if isinstance(g["evidence"], dict) else None,
            "score": g["score"],
            "sentence": tidy(g.get("summary") or "", last_day),
            "window_start": _ts(g["window_start"]),
            "window_end": clip(g["window_end"], last),
            "evidence": [
                (evidence_word(k), _fmt((g["evidence"] or {}).get(k)))
                for k in differing
                if isinstance(g["evidence"], dict) and k in g["evidence"]
            ],
        }
        for g in sorted(group, key=lambda g: (-(g["score"] or 0.0), g["account_id"]))
    ]
    return {
        "members": members,
        "score": max(float(g["score"] or 0.0) for g in group),
        "sentence": tidy(_shared_sentence(first, many), last_day),
        "evidence": [(evidence_word(k), _fmt(evs[0][k])) for k in shared_keys],
        "start": start,
        "end": end,
        "txn_ids": txns,
        "typologies": first["typologies"],
    }


def evidence_txn_ids(signals: list[dict[str, Any]]) -> set[str]:
    """Every transaction some signal of the case points at (marked in the table)."""
    return {t for s in signals for t in (s["txn_ids"] or [])}
