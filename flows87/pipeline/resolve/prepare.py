"""Party records made comparable: names, numbers and addresses normalised, blocking keys added.

Banks write the same person differently: accents or not, Cyrillic or Latin letters, "J. Smith"
or "John Smith", "Smith John", "+44 20 7946 0018" or "020 7946 0018", "ACME Ltd" or "Acme
Limited". Everything is reduced here, once, in polars, so that the SQL Splink runs compares
plain columns. The phonetic key is a consonant skeleton (first letter kept, vowels and h
dropped, doubled letters collapsed, ph/f, c/k, z/s, w/v, y/j/i folded), enough for the common
transliterations (Mohammed/Muhammad, Aleksandr/Alexander, Yusuf/Jusuf) to share a block.
"""

from __future__ import annotations

import polars as pl

from flows87.pipeline.resolve.settings import ResolutionSettings

PARTY_COLUMNS: dict[str, pl.DataType] = {
    "record_id": pl.String(),
    "kind": pl.String(),
    "account_id": pl.String(),
    "bank_id": pl.String(),
    "name": pl.String(),
    "first_name": pl.String(),
    "last_name": pl.String(),
    "birth_date": pl.Date(),
    "id_number": pl.String(),
    "id_type": pl.String(),
    "nationality": pl.String(),
    "phone": pl.String(),
    "email": pl.String(),
    "address": pl.String(),
    "country": pl.String(),
    "source_file": pl.String(),
}
"""The reader's party records (the shared contract); absent columns are read as nulls."""

_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya", "і": "i",
    "ї": "yi", "є": "ye", "ґ": "g",
}  # fmt: skip
_FOLD = {"sch": "sh", "ph": "f", "ck": "k", "kh": "h", "dh": "d", "th": "t", "gh": "g",
         "ch": "sh", "x": "ks", "q": "k", "c": "k", "z": "s", "w": "v", "y": "i", "j": "i"}  # fmt: skip
_DOUBLES = [c + c for c in "bdfgklmnprstv"]
_PHONETIC_LENGTH = 6


def conform_parties(parties: pl.DataFrame) -> pl.DataFrame:
    """The contract's columns in the contract's types (absent ones null), nothing else."""
    cols = []
    for name, dtype in PARTY_COLUMNS.items():
        if name in parties.columns:
            cols.append(pl.col(name).cast(dtype))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
    out = parties.select(cols)
    if out["record_id"].null_count() or out["record_id"].n_unique() != out.height:
        raise ValueError("party records need a unique, non-null record_id")
    return out.with_columns(
        pl.when(pl.col("kind").str.to_lowercase().is_in(["entity", "business", "company"]))
        .then(pl.lit("entity"))
        .otherwise(pl.lit("person"))
        .alias("kind")
    )


def plain_text(expr: pl.Expr) -> pl.Expr:
    """Lower case, Cyrillic transliterated, accents dropped, anything but letters and digits a
    single space."""
    lower = expr.str.to_lowercase().str.replace_many(list(_CYRILLIC), list(_CYRILLIC.values()))
    return (
        lower.str.normalize("NFKD")
        .str.replace_all(r"\p{M}", "")
        .str.replace_all(r"[^\p{L}\p{N}]+", " ")
        .str.strip_chars()
        .replace("", None)
    )


def phonetic(expr: pl.Expr) -> pl.Expr:
    """Consonant skeleton of one plain-text token (see the module docstring)."""
    folded = expr.str.replace_many(list(_FOLD), list(_FOLD.values()))
    skeleton = folded.str.slice(0, 1) + folded.str.slice(1).str.replace_all("[aeiouh]", "")
    collapsed = skeleton.str.replace_many(_DOUBLES, [d[0] for d in _DOUBLES])
    return collapsed.str.replace_many(_DOUBLES, [d[0] for d in _DOUBLES]).str.slice(
        0, _PHONETIC_LENGTH
    )


def _without(tokens: pl.Expr, words: list[str]) -> pl.Expr:
    return tokens.list.eval(pl.element().filter(~pl.element().is_in(words)))


def prepare(parties: pl.DataFrame, settings: ResolutionSettings) -> pl.DataFrame:
    """The comparison columns Splink reads (one row per record, `record_id` unique)."""
    p = conform_parties(parties)
    entity = pl.col("kind") == "entity"
    plain_name = plain_text(
        pl.coalesce(
            pl.col("name"),
            pl.concat_str(
                [pl.col("first_name"), pl.col("last_name")], separator=" ", ignore_nulls=True
            ),
        )
    )
    tokens = plain_name.str.split(" ")
    tokens = (
        pl.when(entity).then(_without(tokens, [*settings.legal_forms, "and"])).otherwise(tokens)
    )
    out = p.with_columns(tokens.alias("_tokens")).with_columns(
        pl.col("_tokens").list.join(" ").replace("", None).alias("name_norm"),
        pl.col("_tokens").list.sort().list.join(" ").replace("", None).alias("name_sorted"),
        pl.coalesce(plain_text(pl.col("first_name")), pl.col("_tokens").list.first()).alias(
            "first_norm"
        ),
        pl.coalesce(plain_text(pl.col("last_name")), pl.col("_tokens").list.last()).alias(
            "last_norm"
        ),
        pl.col("_tokens")
        .list.eval(phonetic(pl.element().filter(pl.element().str.len_chars() >= 2)))
        .list.unique()
        .list.sort()
        .alias("_keys"),
        pl.col("id_number")
        .str.to_uppercase()
        .str.replace_all(r"[^\p{L}\p{N}]", "")
        .replace("", None)
        .alias("id_norm"),
        plain_text(pl.col("id_type")).alias("id_type_norm"),
        pl.col("phone").str.replace_all(r"\D", "").str.slice(-9).alias("phone_norm"),
        pl.col("email").str.strip_chars().str.to_lowercase().replace("", None).alias("email_norm"),
        plain_text(pl.col("address")).alias("address_norm"),
        plain_text(pl.col("country")).alias("country_norm"),
    )
    out = out.with_columns(
        pl.when(pl.col("phone_norm").str.len_chars() >= 6).then(pl.col("phone_norm")),
        pl.col("first_norm").str.slice(0, 1).alias("first_initial"),
        pl.col("_keys").list.join(" ").replace("", None).alias("name_key"),
        # each name token's key, exploded for blocking with the birth date: a block survives a
        # typo in one name, swapped given/family names and an initial for a given name
        pl.col("_keys").alias("name_keys"),
    )
    return out.drop("_tokens", "_keys")
