"""Rule files: the bundled catalogue loads, and bad files are refused with file, line, field, reason."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from flows87.cli import EXIT_OK, EXIT_USER, main
from flows87.errors import ConfigError
from flows87.pipeline.features import BY_NAME, RULES_DIR
from flows87.pipeline.rules import lint, load_rule, load_rules
from flows87.pipeline.rules.compile import compile_expr, substitute

GOOD = (RULES_DIR / "ht_hotel_pattern.yaml").read_text(encoding="utf-8")


def write(tmp_path: Path, text: str, name: str = "ht_hotel_pattern") -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_catalogue_loads_and_is_large_enough() -> None:
    rules = [r.rule for r in load_rules()]
    assert len(rules) >= 25
    for r in rules:
        assert r.references and r.falsepositives
        assert r.id == r.id.lower()
    assert {r.scope for r in rules} == {"account", "transaction", "graph"}
    assert {r.family for r in rules} >= {"behaviour", "network", "identity"}


def test_typo_in_field_name_is_refused_with_line_and_suggestion(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace("severity:", "severty:"))
    with pytest.raises(ConfigError) as exc:
        load_rule(p)
    msg = exc.value.message
    assert str(p) in msg and "severty" in msg and "did you mean 'severity'" in msg
    line = next(i for i, t in enumerate(GOOD.splitlines(), 1) if t.startswith("severity:"))
    assert f"row {line}" in msg


def test_unknown_feature_is_refused_with_suggestion(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace("hotel_count >= :n", "hotel_cnt >= :n"))
    with pytest.raises(ConfigError) as exc:
        load_rule(p)
    assert "unknown feature 'hotel_cnt'" in exc.value.message
    assert "hotel_count" in exc.value.message
    assert exc.value.field == "condition"


def test_out_of_range_default_is_refused(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace("n: {default: 4, min: 2", "n: {default: 1, min: 2"))
    with pytest.raises(ConfigError) as exc:
        load_rule(p)
    assert "outside the allowed range" in exc.value.message
    assert "params.n" in exc.value.message


def test_override_out_of_range_is_refused() -> None:
    rule = load_rule(RULES_DIR / "ht_hotel_pattern.yaml")
    assert rule.values({"n": 6})["n"] == 6
    with pytest.raises(ValueError, match="outside the allowed range"):
        rule.values({"n": 999})
    with pytest.raises(ValueError, match="no parameter"):
        rule.values({"zzz": 1})


def test_duplicate_key_and_bad_yaml_and_wrong_id(tmp_path: Path) -> None:
    dup = write(tmp_path, GOOD + "\nseverity: low\n")
    with pytest.raises(ConfigError, match="duplicate key 'severity'"):
        load_rule(dup)
    bad = write(tmp_path, "id: [unclosed\n", "broken")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_rule(bad)
    other = write(tmp_path, GOOD, "another_name")
    with pytest.raises(ConfigError, match="must equal the file name"):
        load_rule(other)


def test_undeclared_parameter_and_label_use_are_refused(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace("hotel_count >= :n", "hotel_count >= :nn"))
    with pytest.raises(ConfigError, match="not a declared parameter"):
        load_rule(p)
    p = write(tmp_path, GOOD.replace("hotel_count >= :n", "hotel_count >= :n AND is_suspicious"))
    with pytest.raises(ConfigError, match="label"):
        load_rule(p)


def test_unknown_graph_pattern_and_parameter(tmp_path: Path) -> None:
    text = (RULES_DIR / "ml_cycle.yaml").read_text(encoding="utf-8")
    p = write(tmp_path, text.replace("pattern: cycle", "pattern: cylce"), "ml_cycle")
    with pytest.raises(ConfigError, match=r"(?s)unknown graph pattern 'cylce'.*did you mean cycle"):
        load_rule(p)
    p = write(tmp_path, text.replace("max_length:", "longest:"), "ml_cycle")
    with pytest.raises(ConfigError, match="takes no parameter 'longest'"):
        load_rule(p)


def test_lint_reports_every_bad_file_and_cli_exit_codes(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    write(
        tmp_path,
        GOOD.replace("ht_hotel_pattern", "bad_one").replace("hotel_count", "nope"),
        "bad_one",
    )
    write(tmp_path, "just text", "bad_two")
    good, errors = lint(tmp_path)
    assert [p.name for p in good] == ["ht_hotel_pattern.yaml"]
    assert len(errors) == 2
    assert main(["rules", "lint", str(tmp_path)]) == EXIT_USER
    assert main(["rules", "lint"]) == EXIT_OK


def test_rules_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["rules", "list", "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert {d["id"] for d in data} == {p.stem for p in RULES_DIR.glob("*.yaml")}


# --- property-based: rule compilation -----------------------------------------------------------

NUMERIC_FEATURES = sorted(n for n, f in BY_NAME.items() if f.numeric)
OPS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
}


@settings(max_examples=60, deadline=None)
@given(
    feature=st.sampled_from(NUMERIC_FEATURES),
    op=st.sampled_from(sorted(OPS)),
    threshold=st.integers(min_value=-5, max_value=5),
    values=st.lists(st.integers(min_value=-5, max_value=5), min_size=1, max_size=20),
)
def test_compiled_condition_agrees_with_python(
    feature: str, op: str, threshold: int, values: list[int]
) -> None:
    expr = compile_expr(f"{feature} {op} :t", {"t": threshold}, BY_NAME, "condition")
    got = pl.DataFrame({feature: values}).select(expr.alias("x"))["x"].to_list()
    assert got == [OPS[op](v, threshold) for v in values]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40))
def test_garbage_conditions_fail_cleanly(text: str) -> None:
    try:
        expr = compile_expr(text, {}, BY_NAME, "condition")
    except ConfigError as exc:
        assert exc.field == "condition"
    else:
        assert set(expr.meta.root_names()) <= set(BY_NAME)


@settings(max_examples=40, deadline=None)
@given(
    name=st.from_regex(r"[a-z]{1,8}", fullmatch=True), value=st.floats(-1e6, 1e6, allow_nan=False)
)
def test_parameters_substitute_as_numbers_only(name: str, value: float) -> None:
    text = substitute(f"x >= :{name} AND y = ':{name}'", {name: value})
    assert re.search(rf"x >= {re.escape(repr(value))}", text)
    assert f"':{name}'" in text  # inside quotes a colon is text, not a parameter


def test_bundled_rule_files_are_plain_yaml() -> None:
    for p in RULES_DIR.glob("*.yaml"):
        assert isinstance(yaml.safe_load(p.read_text(encoding="utf-8")), dict)
