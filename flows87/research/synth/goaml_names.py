"""How one party comes to be written differently by different banks and in different reports.

A bank types a client's name once, at onboarding (its KYC record), and copies it into every
report it files; another bank only sees the name a payer typed for a beneficiary. So spelling
varies between banks (a transliteration, a typo, swapped given and family names, an initial, an
old phone or address) and, less often, between reports of the same bank. `NOISE` says how often
at each level; `none` writes every party exactly as the canonical tables hold it.

Randomness comes from `random.Random(<text key>)`: string seeds are hashed with SHA-512, so a
party's variant depends only on the seed, the bank, the party (and the report for per-report
noise), never on the order in which reports are written.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, timedelta

__all__ = ["NOISE", "Noise", "Identity", "bank_view", "report_view", "rng_for"]


@dataclass(frozen=True)
class Noise:
    """Probabilities of one noise level."""

    bank: float  # a bank's KYC record spells the name differently from the truth
    report: float  # one report spells it differently again (a clerk's typo, a payer's typing)
    field: float  # a field is stale or changed at a bank (phone, address, id typo)
    missing: float  # an optional field is left out of one record
    double: float  # a varied name gets a second change


NOISE: dict[str, Noise] = {
    "none": Noise(0.0, 0.0, 0.0, 0.0, 0.0),
    "low": Noise(0.12, 0.03, 0.05, 0.05, 0.0),
    "default": Noise(0.35, 0.1, 0.15, 0.15, 0.15),
    "high": Noise(0.7, 0.3, 0.35, 0.35, 0.4),
}

# Spellings of the same name in other transliterations or languages (each group is one name).
_GROUPS: tuple[tuple[str, ...], ...] = (
    ("Mohammed", "Muhammad", "Mohamed", "Mohammad", "Muhammed"),
    ("Ahmed", "Ahmad", "Ahmet"),
    ("Aisha", "Ayesha", "Aicha", "Aishah"),
    ("Fatima", "Fatimah", "Fatma"),
    ("Omar", "Umar"),
    ("Ali", "Aly"),
    ("Tariq", "Tarek", "Tareq"),
    ("Leila", "Layla", "Leyla"),
    ("Nadia", "Nadya"),
    ("Hassan", "Hasan"),
    ("Ibrahim", "Ebrahim", "Ibraheem"),
    ("Olga", "Olha"),
    ("Ivan", "Iwan"),
    ("Irina", "Iryna"),
    ("Elena", "Yelena", "Helena"),
    ("Ekaterina", "Yekaterina", "Katerina"),
    ("Ivanova", "Iwanowa", "Ivanowa"),
    ("Petrov", "Petroff", "Petrow"),
    ("Jose", "José"),
    ("Andre", "André"),
    ("Ines", "Inês"),
    ("Sofia", "Sophia", "Sofiya"),
    ("Sara", "Sarah"),
    ("Hannah", "Hanna"),
    ("Luis", "Luiz"),
    ("Zhang", "Chang"),
    ("Chen", "Chan"),
    ("Huang", "Hwang"),
    ("Nguyen", "Nguyễn"),
    ("Kowalski", "Kovalski"),
    ("Novak", "Nowak"),
    ("Yuki", "Yuuki"),
    ("Priya", "Priyah"),
    ("Mensah", "Mensa"),
)
ALTERNATIVES: dict[str, tuple[str, ...]] = {
    name: tuple(n for n in group if n != name) for group in _GROUPS for name in group
}
# Legal-form suffixes written for one another
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "LLC": ("L.L.C.", "Limited", "Ltd", "Ltd.", "Co", ""),
    "Ltd": ("Limited", "Ltd.", "LTD", "LLC", ""),
}
_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


@dataclass(frozen=True)
class Identity:
    """What a record says about a party (None: not written)."""

    kind: str  # person / entity
    first: str
    last: str
    name: str  # entity name (persons: first + last)
    birth: date | None
    id_number: str | None
    phone: str | None  # digits, without the country prefix
    calling: str  # the phone's country prefix
    street: str | None
    city: str | None
    country: str
    email: str | None


def rng_for(*key: object) -> random.Random:
    return random.Random("/".join(str(k) for k in key))


def typo(word: str, rng: random.Random) -> str:
    """One keyboard slip: a letter dropped, doubled, swapped with the next, or mistyped."""
    if len(word) < 3:
        return word + word[-1:]
    i = rng.randrange(1, len(word) - 1)  # keep the first letter, as most typos do
    op = rng.randrange(4)
    if op == 0:
        return word[:i] + word[i + 1 :]
    if op == 1:
        return word[:i] + word[i] + word[i:]
    if op == 2 and word[i] != word[i + 1]:  # swapping "mm" would change nothing
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 2:
        return word[:i] + word[i + 1 :]
    subs = [c for c in _KEYBOARD if c != word[i].lower()]
    sub = rng.choice(subs)
    return word[:i] + (sub.upper() if word[i].isupper() else sub) + word[i + 1 :]


def _vary_person(who: Identity, rng: random.Random) -> Identity:
    first, last = who.first, who.last
    options = ["typo_first", "typo_last", "swap", "initial", "upper"]
    if first in ALTERNATIVES or last in ALTERNATIVES:
        options += ["translit"] * 4
    op = rng.choice(options)
    if op == "translit":
        if first in ALTERNATIVES and (last not in ALTERNATIVES or rng.random() < 0.5):
            first = rng.choice(ALTERNATIVES[first])
        else:
            last = rng.choice(ALTERNATIVES[last])
    elif op == "typo_first":
        first = typo(first, rng)
    elif op == "typo_last":
        last = typo(last, rng)
    elif op == "swap":
        first, last = last, first
    elif op == "initial":
        first = first[0] + "."
    else:
        last = last.upper()
    return replace(who, first=first, last=last, name=f"{first} {last}")


def _vary_entity(who: Identity, rng: random.Random) -> Identity:
    words = who.name.split()
    suffix = words[-1] if words and words[-1] in _SUFFIXES else None
    op = rng.choice(["suffix", "suffix", "typo", "upper", "and"] if suffix else ["typo", "upper"])
    if op == "suffix" and suffix:
        words[-1] = rng.choice(_SUFFIXES[suffix])
    elif op == "typo":
        k = rng.randrange(len(words) - 1) if len(words) > 1 else 0
        words[k] = typo(words[k], rng)
    elif op == "upper":
        words = [w.upper() for w in words]
    else:
        words.insert(len(words) - 1, "&" if rng.random() < 0.5 else "and")
        words.insert(len(words) - 1, "Co")
    name = " ".join(w for w in words if w)
    return replace(who, name=name)


def vary_name(who: Identity, rng: random.Random, noise: Noise) -> Identity:
    varied = _vary_entity(who, rng) if who.kind == "entity" else _vary_person(who, rng)
    if rng.random() < noise.double:
        varied = _vary_entity(varied, rng) if who.kind == "entity" else _vary_person(varied, rng)
    return varied


def _id_typo(number: str, rng: random.Random) -> str:
    digits = [i for i, c in enumerate(number[:-1]) if c.isdigit() and number[i + 1].isdigit()]
    if not digits:
        return number
    i = rng.choice(digits)
    return number[:i] + number[i + 1] + number[i] + number[i + 2 :]


def bank_view(who: Identity, bank: str, party: str, seed: int, noise: Noise) -> Identity:
    """The party as `bank` recorded it when it opened the account (its KYC record)."""
    rng = rng_for(seed, "kyc", bank, party)
    out = vary_name(who, rng, noise) if rng.random() < noise.bank else who
    if out.phone and rng.random() < noise.field:  # an older or a newer phone number
        out = replace(out, phone=str(rng.randrange(200_000_000, 999_999_999)))
    if out.street and rng.random() < noise.field:  # an older address
        out = replace(out, street=f"{rng.randrange(1, 9999)} {out.street.split(' ', 1)[-1]}")
    if out.id_number and rng.random() < noise.field / 2:
        out = replace(out, id_number=_id_typo(out.id_number, rng))
    if out.birth and rng.random() < noise.field / 3:  # day and month swapped on a form
        b = out.birth
        if b.day <= 12 and b.day != b.month:
            out = replace(out, birth=date(b.year, b.day, b.month))
        else:
            out = replace(out, birth=b + timedelta(days=1))
    return out


def report_view(who: Identity, key: str, seed: int, noise: Noise) -> Identity:
    """The party as written in one record of one report (`key`: the record id)."""
    rng = rng_for(seed, "record", key)
    out = vary_name(who, rng, noise) if rng.random() < noise.report else who
    if rng.random() < noise.missing:
        out = replace(out, email=None)
    if rng.random() < noise.missing:
        out = replace(out, street=None, city=None)
    if rng.random() < noise.missing:
        out = replace(out, id_number=None)
    if rng.random() < noise.missing / 2:
        out = replace(out, birth=None)
    return out
