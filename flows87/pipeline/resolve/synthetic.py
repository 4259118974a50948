"""Labelled party records with controlled noise, for the tests and the benchmark.

Each true person is written 1 + Poisson(1) times, as banks would write them: at the noise
level's rates a record's name is varied (a typo, swapped given and family names, an initial,
another transliteration), an optional field is missing, or the phone or address has changed
or the identity number has a typo. Namesakes are common on purpose (a few thousand given
names times a few thousand family names over a million records), so birth dates and numbers
have to tell them apart. `true_party_id` is the truth; everything is seeded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from flows87.research.synth.catalog import FIRST_NAMES, LAST_NAMES


@dataclass(frozen=True)
class Noise:
    name: float  # a record's name is varied
    missing: float  # each optional field is left out
    changed: float  # phone or address changed, identity number typo'd
    double: float  # a varied name is varied once more


NOISE = {
    "none": Noise(0.0, 0.0, 0.0, 0.0),
    "low": Noise(0.12, 0.05, 0.05, 0.0),
    "default": Noise(0.35, 0.15, 0.15, 0.15),
    "high": Noise(0.7, 0.35, 0.35, 0.4),
}

_TRANSLIT = (
    ("Mohammed", "Muhammad", "Mohamed"), ("Aleksandr", "Alexander", "Oleksandr"),
    ("Yusuf", "Youssef", "Jusuf"), ("Sergei", "Sergey", "Serhiy"), ("Olga", "Olha"),
    ("Ekaterina", "Yekaterina"), ("Petrov", "Petroff"), ("Hassan", "Hasan"),
)  # fmt: skip
_SYLLABLES = tuple(
    [
        "ka",
        "ri",
        "mo",
        "la",
        "ne",
        "sa",
        "to",
        "vi",
        "en",
        "an",
        "ber",
        "dor",
        "gan",
        "hal",
        "ith",
        "jo",
        "kel",
        "lin",
        "mar",
        "nor",
        "ost",
        "pel",
        "quin",
        "ros",
        "sel",
        "tan",
        "ul",
        "var",
        "wen",
        "yar",
        "zel",
        "bo",
        "chi",
        "de",
        "fa",
        "gu",
    ]
)
_STREETS = ("High", "Station", "Church", "Park", "Mill", "Market", "Bridge", "King", "Queen")
_TOWNS = ("Riverton", "Eastbury", "Northam", "Westwick", "Southport", "Lakeside", "Hillford")


def _vocabulary(rng: random.Random, base: tuple[str, ...], extra: int) -> list[str]:
    words = set(base) | {w for group in _TRANSLIT for w in group[:1]}
    while len(words) < len(base) + extra:
        n = rng.choice((2, 2, 3))
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(n)).capitalize())
    return sorted(words)


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 3:
        return word
    i = rng.randrange(1, len(word))
    op = rng.randrange(3)
    if op == 0:  # substitution
        return word[:i] + rng.choice("aeiourstnl") + word[i + 1 :]
    if op == 1:  # deletion
        return word[:i] + word[i + 1 :]
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]  # transposition


def _vary(rng: random.Random, first: str, last: str) -> tuple[str, str, str]:
    """(first, last, full name) after one variation."""
    kind = rng.random()
    if kind < 0.4:
        if rng.random() < 0.5:
            first = _typo(rng, first)
        else:
            last = _typo(rng, last)
        return first, last, f"{first} {last}"
    if kind < 0.6:
        return last, first, f"{last} {first}"  # swapped given/family names
    if kind < 0.8:
        return first[0] + ".", last, f"{first[0]}. {last}"
    for group in _TRANSLIT:
        for word, name in ((first, "first"), (last, "last")):
            if word in group:
                other = rng.choice([w for w in group if w != word])
                first, last = (other, last) if name == "first" else (first, other)
                return first, last, f"{first} {last}"
    return first, last, f"{first.upper()} {last.upper()}"


def people(records: int, noise: str = "default", seed: int = 0) -> pl.DataFrame:
    """`records` person records of the parties contract, with `true_party_id`."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    lvl = NOISE[noise]
    firsts = _vocabulary(rng, FIRST_NAMES, 1500)
    lasts = _vocabulary(rng, LAST_NAMES, 6000)
    fw = 1 / np.arange(1, len(firsts) + 1) ** 0.7  # a few names are common, most are rare
    lw = 1 / np.arange(1, len(lasts) + 1) ** 0.7
    sizes = 1 + nrng.poisson(1.0, size=records)
    cut = int(np.searchsorted(np.cumsum(sizes), records))
    sizes = sizes[: cut + 1]
    sizes[-1] -= int(sizes.sum()) - records
    n = len(sizes)
    fi = nrng.choice(len(firsts), size=n, p=fw / fw.sum())
    li = nrng.choice(len(lasts), size=n, p=lw / lw.sum())
    dob = nrng.integers(0, 65 * 365, size=n)
    rows: list[tuple] = []
    epoch = date(1940, 1, 1)
    for p in range(n):
        first, last = firsts[fi[p]], lasts[li[p]]
        birth = epoch + timedelta(days=int(dob[p]))
        passport = f"{rng.choice('ABCDEFGHJK')}{rng.choice('LMNPRSTUVW')}{rng.randrange(10**7):07d}"
        phone = f"+44 7{rng.randrange(10**9):09d}"
        email = f"{first.lower()}.{last.lower()}{rng.randrange(100)}@mail{rng.randrange(5)}.example"
        address = f"{rng.randrange(1, 300)} {rng.choice(_STREETS)} Street {rng.choice(_TOWNS)}"
        for k in range(int(sizes[p])):
            f, la, full = first, last, f"{first} {last}"
            if k and rng.random() < lvl.name:
                f, la, full = _vary(rng, f, la)
                if rng.random() < lvl.double:
                    f, la, full = _vary(rng, f, la)
            ph, ad, pid, bd = phone, address, passport, birth
            if k and rng.random() < lvl.changed:
                ph = f"+44 7{rng.randrange(10**9):09d}"
            if k and rng.random() < lvl.changed:
                ad = f"{rng.randrange(1, 300)} {rng.choice(_STREETS)} Road {rng.choice(_TOWNS)}"
            if k and rng.random() < lvl.changed / 3:
                pid = _typo(rng, pid)
            if k and rng.random() < lvl.changed / 3:  # a slipped day, or day and month swapped
                swap = birth.day <= 12 and rng.random() < 0.5
                bd = date(birth.year, birth.day, birth.month) if swap else birth + timedelta(1)

            def keep(value: object, first: bool = k == 0) -> object:
                return None if not first and rng.random() < lvl.missing else value

            rows.append(
                (
                    f"r{p:08d}-{k}",
                    f,
                    la,
                    full,
                    keep(bd),
                    keep(pid),
                    keep(ph),
                    keep(email),
                    keep(ad),
                    f"bank{rng.randrange(12)}",
                    f"P{p:08d}",
                )  # fmt: skip
            )
    frame = pl.DataFrame(
        rows,
        schema=[
            "record_id",
            "first_name",
            "last_name",
            "name",
            "birth_date",
            "id_number",
            "phone",
            "email",
            "address",
            "bank_id",
            "true_party_id",
        ],  # fmt: skip
        orient="row",
    )
    return frame.with_columns(
        pl.lit("person").alias("kind"),
        pl.lit("passport").alias("id_type"),
        ("A-" + pl.col("record_id")).alias("account_id"),
    ).sample(fraction=1.0, shuffle=True, seed=seed)


def scores(clusters: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float]:
    """Pairwise precision, recall and F1, and cluster F1 (exactly reproduced parties)."""
    t = clusters.select("record_id", "party_id").join(
        truth.select("record_id", "true_party_id"), on="record_id"
    )

    def pairs(sizes: pl.Series) -> int:
        return int((sizes * (sizes - 1) // 2).sum())

    tp = pairs(t.group_by("party_id", "true_party_id").len()["len"])
    predicted = pairs(t.group_by("party_id").len()["len"])
    actual = pairs(t.group_by("true_party_id").len()["len"])
    precision = tp / predicted if predicted else 1.0
    recall = tp / actual if actual else 1.0
    by_pred = t.group_by("party_id").agg(pl.col("record_id").sort().alias("m"))
    by_true = t.group_by("true_party_id").agg(pl.col("record_id").sort().alias("m"))
    exact = by_pred.join(by_true, on="m").height
    cp, cr = exact / by_pred.height, exact / by_true.height
    return {
        "pair_precision": round(precision, 4),
        "pair_recall": round(recall, 4),
        "pair_f1": round(2 * precision * recall / (precision + recall or 1), 4),
        "cluster_precision": round(cp, 4),
        "cluster_recall": round(cr, 4),
        "cluster_f1": round(2 * cp * cr / (cp + cr or 1), 4),
    }
