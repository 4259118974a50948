"""Fingerprints of a run's cases: how the loader tells a changed case from one seen before.

A case's fingerprint is a sha256 over its evidence rows in a fixed order (canonical JSON lines),
so loading the same run twice finds nothing to write.
"""

from __future__ import annotations

import hashlib

import polars as pl

from flows87.investigate.store.rows import StoreRows


def _digests(frame: pl.DataFrame, order: list[str]) -> dict[str, str]:
    """case_id -> sha256 of the case's rows (canonical JSON lines in a fixed order)."""
    if frame.is_empty():
        return {}
    lines = (
        frame.sort(["case_id", *order])
        .select("case_id", pl.struct(pl.exclude("case_id")).struct.json_encode().alias("j"))
        .group_by("case_id", maintain_order=True)
        .agg(pl.col("j").str.join("\n"))
    )
    return {
        cid: hashlib.sha256(text.encode("utf-8")).hexdigest() for cid, text in lines.iter_rows()
    }


def case_fingerprints(rows: StoreRows) -> dict[str, str]:
    """Per case: sha256 over its evidence (rank excluded: it moves when other cases change)."""
    parts = [
        _digests(rows.cases.drop("rank"), []),
        _digests(rows.signals, ["seq"]),
        _digests(rows.accounts, ["account_id"]),
        _digests(rows.transactions, ["txn_id"]),
    ]
    out = {}
    for cid in rows.cases["case_id"].to_list():
        h = hashlib.sha256()
        for p in parts:
            h.update(p.get(cid, "-").encode())
        out[cid] = h.hexdigest()
    return out


def run_fingerprint(cases: dict[str, str]) -> str:
    """One sha256 over every case's fingerprint, in case_id order."""
    return hashlib.sha256("".join(f"{k}{v}" for k, v in sorted(cases.items())).encode()).hexdigest()
