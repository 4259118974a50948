"""Which rule parameter bounds which feature, read from the rule's condition.

Only plain comparisons of one column with one parameter count: `night_in_payers >= :n`,
`COALESCE(living_cost_share, 0) <= :p`, `:n <= night_in_payers`. A parameter inside arithmetic
(`amount_base >= :threshold * (1 - :band)`) bounds no single feature and is left out: moving it
would move more than the one threshold the feedback found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Keep = Literal["above", "below"]
"""Which side of a threshold a rule keeps: `above` for `feature >= :p`, `below` for `<=`."""

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'[^']*')|(?P<param>:[a-z_]\w*)|(?P<num>\d+(?:\.\d*)?(?:e[+-]?\d+)?)"
    r"|(?P<ident>[a-z_]\w*)|(?P<op>>=|<=|<>|!=|=|>|<|[-+*/(),]))",
    re.IGNORECASE,
)
_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN", "IS", "NULL", "LIKE", "COALESCE", "TRUE", "FALSE"}
_COMPARE = (">=", "<=", ">", "<")
_FLIP = {">=": "<=", "<=": ">=", ">": "<", "<": ">"}

Token = tuple[str, str]


def _tokens(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            return []  # not a condition this reader knows: no bounds rather than wrong ones
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _word(tok: Token | None) -> str:
    return tok[1].upper() if tok is not None else ""


def _column(toks: list[Token], i: int) -> tuple[str, int] | None:
    """A plain column or COALESCE(column, ...) starting at i: its name and the index after."""
    if i >= len(toks) or toks[i][0] != "ident":
        return None
    if _word(toks[i]) == "COALESCE":
        if i + 2 >= len(toks) or toks[i + 1][1] != "(" or toks[i + 2][0] != "ident":
            return None
        depth, j = 0, i + 1
        while j < len(toks):
            depth += {"(": 1, ")": -1}.get(toks[j][1], 0)
            j += 1
            if depth == 0:
                return toks[i + 2][1].lower(), j
        return None
    if _word(toks[i]) in _KEYWORDS:
        return None
    return toks[i][1].lower(), i + 1


def _starts(toks: list[Token], i: int) -> bool:
    return i == 0 or _word(toks[i - 1]) in ("AND", "OR", "NOT") or toks[i - 1][1] == "("


def _ends(toks: list[Token], j: int) -> bool:
    return j >= len(toks) or _word(toks[j]) in ("AND", "OR") or toks[j][1] == ")"


@dataclass(frozen=True)
class Bound:
    """`feature op :param` (written either way round in the rule, normalised to this)."""

    feature: str
    op: str
    param: str

    @property
    def keeps(self) -> Keep:
        return "above" if self.op in (">=", ">") else "below"

    def holds(self, value: float, threshold: float) -> bool:
        """Whether a hit with this feature value passes the bound at `threshold`."""
        return {
            ">=": value >= threshold,
            ">": value > threshold,
            "<=": value <= threshold,
            "<": value < threshold,
        }[self.op]


def bounds(condition: str | None) -> list[Bound]:
    """Every plain feature-to-parameter comparison in `condition`, in order (BETWEEN :lo AND
    :hi gives two)."""
    toks = _tokens(condition or "")
    out: list[Bound] = []
    for i in range(len(toks)):
        if not _starts(toks, i):
            continue
        col = _column(toks, i)
        if col is not None:
            name, j = col
            if j + 1 < len(toks) and toks[j][1] in _COMPARE and toks[j + 1][0] == "param":
                if _ends(toks, j + 2):
                    out.append(Bound(name, toks[j][1], toks[j + 1][1][1:]))
            elif (
                j + 3 < len(toks)
                and _word(toks[j]) == "BETWEEN"
                and toks[j + 1][0] == "param"
                and _word(toks[j + 2]) == "AND"
                and toks[j + 3][0] == "param"
                and _ends(toks, j + 4)
            ):
                out.append(Bound(name, ">=", toks[j + 1][1][1:]))
                out.append(Bound(name, "<=", toks[j + 3][1][1:]))
        elif toks[i][0] == "param" and i + 1 < len(toks) and toks[i + 1][1] in _COMPARE:
            back = _column(toks, i + 2)
            if back is not None and _ends(toks, back[1]):
                out.append(Bound(back[0], _FLIP[toks[i + 1][1]], toks[i][1][1:]))
    return out
