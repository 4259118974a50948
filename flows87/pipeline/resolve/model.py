"""The Splink model: comparisons, blocking rules and unsupervised training.

Each comparison is written out level by level (SQL on the columns `prepare` made), with a
`label_for_charts` that `explain` turns into words. Every level carries a prior m (how often
true matches land there) so a comparison that no training pass could estimate (a run without
e-mails, say) still weighs sensibly; u always comes from random pairs of the run's records.

Blocking decides which pairs are scored at all; each rule is an equi-join, so the work grows
with the records times the block sizes, not with their square:
- the same identity number, the same phone, the same e-mail: one person's identifiers, rare
  across people, catch a match whose name is spelled any way at all;
- the same birth date and one shared name-token key (exploded per token): survives a typo in
  one name, swapped given/family names, an initial for a given name and transliteration, and
  a birth date splits even a common surname's block into days;
- the same name key and the start of the address: records without a birth date;
- entities: the same name key, or the same first letters of the name and country.
A namesake with another birth date, no shared identifier and another address is never
compared, which keeps it apart.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import polars as pl
from splink import Linker, block_on
from splink.internals.blocking_rule_creator import BlockingRuleCreator
from splink.internals.splink_dataframe import SplinkDataFrame

from flows87.pipeline.resolve.settings import ResolutionSettings

log = logging.getLogger(__name__)

Level = dict[str, Any]


def _level(sql: str, label: str, m: float) -> Level:
    return {"sql_condition": sql, "label_for_charts": label, "m_probability": m}


def _null(*cols: str, extra: str = "") -> Level:
    sql = " OR ".join(f"{c}_l IS NULL OR {c}_r IS NULL" for c in cols)
    return {"sql_condition": sql + extra, "label_for_charts": "missing", "is_null_level": True}


def _else(label: str, m: float) -> Level:
    return _level("ELSE", label, m)


def _jw(col: str) -> str:
    return f"jaro_winkler_similarity({col}_l, {col}_r)"


def _name_similarity(a: str = "name_norm", b: str = "name_sorted") -> str:
    return f"greatest({_jw(a)}, {_jw(b)})"


def name_comparison(s: ResolutionSettings, *, person: bool) -> dict[str, Any]:
    hi, mid, lo = (s.name_similarity + [s.name_similarity[-1]] * 3)[:3]
    sim = _name_similarity()
    levels = [
        _null("name_norm"),
        _level("name_norm_l = name_norm_r", "same name", 0.55),
        _level(
            "name_sorted_l = name_sorted_r",
            "same names in another order" if not person else "given and family names swapped",
            0.08,
        ),
        _level(f"{sim} >= {hi}", f"name similar (≥ {hi})", 0.15),
        _level("name_key_l = name_key_r", "names sound the same", 0.08),
        _level(f"{sim} >= {mid}", f"name similar (≥ {mid})", 0.05),
    ]
    if person:
        levels.append(
            _level(
                "first_initial_l = first_initial_r "
                "AND (length(first_norm_l) = 1 OR length(first_norm_r) = 1) "
                f"AND {_jw('last_norm')} >= {mid}",
                "initial of the given name, same family name",
                0.04,
            )
        )
    levels += [_level(f"{sim} >= {lo}", f"name somewhat similar (≥ {lo})", 0.03)]
    levels.append(_else("different name", 0.02))
    return {"output_column_name": "name", "comparison_levels": levels}


def birth_comparison(s: ResolutionSettings) -> dict[str, Any]:
    swapped = (
        "(day(birth_date_l) = month(birth_date_r) AND month(birth_date_l) = day(birth_date_r)"
        " AND year(birth_date_l) = year(birth_date_r))"
    )
    digit = "levenshtein(CAST(birth_date_l AS VARCHAR), CAST(birth_date_r AS VARCHAR)) <= 1"
    close = f"abs(date_diff('day', birth_date_l, birth_date_r)) <= {s.birth_date_close_days}"
    return {
        "output_column_name": "birth_date",
        "comparison_levels": [
            _null("birth_date"),
            _level("birth_date_l = birth_date_r", "same birth date", 0.9),
            _level(f"{swapped} OR {digit}", "birth date one digit or day/month apart", 0.05),
            _level(close, f"birth dates within {s.birth_date_close_days} days", 0.02),
            _else("different birth date", 0.03),
        ],
    }


def id_comparison(s: ResolutionSettings) -> dict[str, Any]:
    # numbers of different document types (a passport, a tax number) say nothing either way
    other_type = (
        " OR (id_type_norm_l IS NOT NULL AND id_type_norm_r IS NOT NULL"
        " AND id_type_norm_l <> id_type_norm_r)"
    )
    levels = [
        _null("id_norm", extra=other_type),
        _level("id_norm_l = id_norm_r", "same identity number", 0.85),
    ]
    if s.id_edit_distance:
        levels.append(
            _level(
                f"levenshtein(id_norm_l, id_norm_r) <= {s.id_edit_distance}",
                "identity number one typo apart",
                0.08,
            )
        )
    levels.append(_else("different identity number", 0.07))
    return {"output_column_name": "id_number", "comparison_levels": levels}


def _exact(col: str, what: str, m_same: float) -> dict[str, Any]:
    return {
        "output_column_name": what,
        "comparison_levels": [
            _null(col),
            _level(f"{col}_l = {col}_r", f"same {what}", m_same),
            _else(f"different {what}", 1 - m_same),
        ],
    }


def email_comparison() -> dict[str, Any]:
    local = "split_part(email_norm_l, '@', 1) = split_part(email_norm_r, '@', 1)"
    return {
        "output_column_name": "email",
        "comparison_levels": [
            _null("email_norm"),
            _level("email_norm_l = email_norm_r", "same e-mail", 0.7),
            _level(local, "same e-mail name at another domain", 0.1),
            _else("different e-mail", 0.2),
        ],
    }


def address_comparison(s: ResolutionSettings) -> dict[str, Any]:
    hi, lo = (s.address_similarity + [s.address_similarity[-1]])[:2]
    return {
        "output_column_name": "address",
        "comparison_levels": [
            _null("address_norm"),
            _level("address_norm_l = address_norm_r", "same address", 0.6),
            _level(f"{_jw('address_norm')} >= {hi}", f"address similar (≥ {hi})", 0.15),
            _level(f"{_jw('address_norm')} >= {lo}", f"address somewhat similar (≥ {lo})", 0.05),
            _else("different address", 0.2),
        ],
    }


def blocking_rules(kind: str) -> list[Any]:
    """The prediction blocking rules (see the module docstring for why each)."""
    common = [block_on("id_norm"), block_on("phone_norm"), block_on("email_norm")]
    if kind == "person":
        return [
            *common,
            block_on("birth_date", "name_keys", arrays_to_explode=["name_keys"]),
            block_on("name_key", "substr(address_norm, 1, 6)"),
        ]
    return [*common, block_on("name_key"), block_on("substr(name_norm, 1, 4)", "country_norm")]


def splink_settings(kind: str, s: ResolutionSettings) -> dict[str, Any]:
    person = kind == "person"
    comparisons = [name_comparison(s, person=person)]
    if person:
        comparisons.append(birth_comparison(s))
    comparisons += [
        id_comparison(s),
        _exact("phone_norm", "phone", 0.6),
        email_comparison(),
        address_comparison(s),
    ]
    if not person:
        comparisons.append(_exact("country_norm", "country", 0.95))
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "record_id",
        "probability_two_random_records_match": s.prior_match,
        "blocking_rules_to_generate_predictions": blocking_rules(kind),
        "comparisons": comparisons,
        "retain_intermediate_calculation_columns": True,
        "retain_matching_columns": True,
        "additional_columns_to_retain": ["bank_id", "account_id"],
    }


def em_passes(kind: str) -> list[tuple[str, ...]]:
    """Blocking passes for expectation maximisation (their columns): each leaves the others'
    comparisons free."""
    if kind == "person":
        return [("id_norm",), ("birth_date", "name_key")]
    return [("id_norm",), ("name_key",)]


def blocked_pairs(records: pl.DataFrame, columns: tuple[str, ...]) -> int:
    """How many pairs agree on all of `columns` (none missing): what a pass would see."""
    sizes = records.drop_nulls(list(columns)).group_by(columns).len()["len"]
    return int((sizes * (sizes - 1) // 2).sum())


def train(linker: Linker, kind: str, s: ResolutionSettings, records: pl.DataFrame) -> list[str]:
    """u from random pairs, the prior from deterministic rules, m by EM; returns what failed or
    was left out."""
    problems: list[str] = []
    t = linker.training
    t.estimate_u_using_random_sampling(max_pairs=s.u_max_pairs, seed=s.seed)
    rules: list[str | BlockingRuleCreator] = (
        ["l.id_norm = r.id_norm AND l.birth_date = r.birth_date", "l.email_norm = r.email_norm"]
        if kind == "person"
        else ["l.id_norm = r.id_norm AND l.name_key = r.name_key"]
    )
    try:
        t.estimate_probability_two_random_records_match(rules, recall=0.7)
    except Exception as exc:  # a run without such pairs keeps the prior
        problems.append(f"prior: {str(exc).splitlines()[0]}")
    prior = linker._settings_obj._probability_two_random_records_match
    if not 0 < prior < 1:  # too few records to see a pair: the settings' prior stays
        linker._settings_obj._probability_two_random_records_match = s.prior_match
        problems.append(f"prior: estimated {prior}, kept {s.prior_match}")
    sample = min(1.0, max(s.em_record_sample, 20_000 / max(records.height, 1)))
    for columns in em_passes(kind):
        # a few hundred pairs, nearly all of them one party's spellings, cannot tell matches
        # from non-matches: EM drives a level seen only in non-matches to m = 0 and fails
        pairs = blocked_pairs(records, columns)
        if pairs < s.em_min_pairs:
            problems.append(
                f"EM on {' + '.join(columns)} left out: {pairs} pairs (em_min_pairs "
                f"{s.em_min_pairs:g}), the prior m stays"
            )
            continue
        rule = block_on(*columns)
        # a pass that fails half-way (a level no match ever reaches: m = 0) leaves Splink's
        # settings without the comparisons it had set aside; the pass is undone instead
        before = copy.deepcopy(linker._settings_obj)
        try:
            t.estimate_parameters_using_expectation_maximisation(
                rule, max_pairs=s.em_max_pairs, record_sample_proportion=sample
            )
        except Exception as exc:  # the estimates from before this pass stay
            linker._settings_obj = before
            sql = rule.get_blocking_rule("duckdb").blocking_rule_sql
            problems.append(f"EM on {sql}: {str(exc).splitlines()[0]}")
    for p in problems:
        log.info("resolution training (%s): %s", kind, p)
    return problems


def predict(linker: Linker, s: ResolutionSettings) -> SplinkDataFrame:
    return linker.inference.predict(threshold_match_probability=s.review_from, warning_mode="never")
