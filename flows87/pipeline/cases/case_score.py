"""A case's risk: the evidence of its accounts added up in log-odds space, mapped back to [0, 1].

An account's risk is a noisy-OR, 1 - exp(-e), where e = -ln(1 - risk) is its evidence (the sum
of -ln(1 - weighted score) over its families, scoring.py). Two strong families put e past 9
and the risk at 1.0000, so "the case is as strong as its strongest account" left most of the
head of the queue tied. Here the parts of a case add up as evidence instead, which never
saturates:

    z = strongest x e_max                      evidence of its strongest account
      + accounts  x ln(n_flagged)              accounts that met the case-entry test
      + families  x (n_families - 1)           independent families (behaviour, network,
                                               identity; anomaly is none) among its signals
      + money     x ln(1 + moved / reference)  its evidence transactions' amount, against what
                                               the median account sent in the run
    risk = z / (z + half)

The map z / (z + half) is 0.5 at z = `half` and approaches 1 only polynomially (z = 10 x half
gives 0.909, 100 x half 0.990): unlike a logistic or noisy-OR map it keeps cases apart at any
evidence a run produces. Every part is non-negative and grows with what it counts, so adding a
flagged account, a family, money or a stronger account never lowers a case. The weights live in
`rules/settings/scoring.yaml` (`case_score:`), for researchers to tune.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

INDEPENDENT = ("behaviour", "identity", "network")
"""The families that corroborate each other; an anomaly score is not a family of red flags."""


class CaseScoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    strongest: float = Field(1.0, ge=0)
    accounts: float = Field(1.0, ge=0)
    families: float = Field(1.0, ge=0)
    money: float = Field(0.5, ge=0)
    half: float = Field(10.0, gt=0)


@dataclass(frozen=True)
class CaseEvidence:
    """The parts of one case's score (cases.parquet's risk_* columns)."""

    n_flagged: int
    families: tuple[str, ...]  # independent families among its signals, sorted
    strongest_risk: float  # the strongest account's risk, in [0, 1]
    strongest_evidence: float  # its evidence, -ln(1 - risk), not saturated
    strongest_signals: tuple[str, ...]  # the strongest account's signal names, strongest first
    moved: float
    money_ratio: float  # moved / the run's reference amount

    def evidence(self, w: CaseScoreSettings) -> float:
        return (
            w.strongest * self.strongest_evidence
            + w.accounts * math.log(max(self.n_flagged, 1))
            + w.families * max(len(self.families) - 1, 0)
            + w.money * math.log1p(max(self.money_ratio, 0.0))
        )

    def score(self, w: CaseScoreSettings) -> float:
        z = self.evidence(w)
        return z / (z + w.half)

    def reason(self, currency: str = "") -> str:
        """One sentence naming the parts, as the queue shows why one case outranks the next."""
        n = self.n_flagged
        fams = len(self.families)
        head = f"{n} account{'s' if n != 1 else ''} flagged"
        head += (
            f" in {fams} famil{'ies' if fams != 1 else 'y'} ({', '.join(self.families)})"
            if fams
            else " in no family of red flags (anomaly only)"
        )
        signals = ", ".join(self.strongest_signals[:3])
        strongest = f"strongest account {self.strongest_risk:.2f}" + (
            f" ({signals})" if signals else ""
        )
        unit = f" {currency}" if currency else ""
        money = f"{self.moved:,.0f}{unit} moved"
        if self.money_ratio > 0:
            money += f" ({_times(self.money_ratio)} what the median account sent)"
        return f"{head}; {strongest}; {money}"


def _times(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def signal_name(signal_id: str, source: str) -> str:
    """`ml_fan_in` -> "fan in": the rule's id without its typology prefix, for a sentence."""
    if source == "detector":
        return "anomaly"
    head, _, rest = signal_id.partition("_")
    return (rest if rest and len(head) <= 3 else signal_id).replace("_", " ")


def money_reference(transactions: pl.DataFrame) -> float:
    """What the median account sent in the run (amount_base): the population's yardstick for a
    case's money. 1.0 when nothing was sent, so ratios stay finite."""
    if transactions.is_empty() or "amount_base" not in transactions.columns:
        return 1.0
    sent = transactions.group_by("src_account").agg(pl.col("amount_base").sum())["amount_base"]
    median = sent.median()
    return float(median) if isinstance(median, (int, float)) and median > 0 else 1.0
