"""flows87.research.feedback: rule precision per week from a real SQLite case store whose cases
were decided through the workflow over three ISO weeks (worked out by hand), the patch for a rule
whose false positives cluster on one feature (applied with `git apply`), none for a rule whose
false positives do not, the CLI's files, and the threshold search against brute force."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows87.cli import EXIT_OK, EXIT_USER, main
from flows87.pipeline.features import RULES_DIR
from flows87.pipeline.rules import load_rule
from flows87.research.feedback import feedback, precision_by_period
from flows87.research.feedback.clusters import best_threshold
from flows87.research.feedback.conditions import Bound, bounds

UTC_US = pl.Datetime("us", "UTC")
W1 = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC))  # 7d window fired
W2 = (datetime(2026, 1, 8, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC))  # 7d, not fired
M1 = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 31, tzinfo=UTC))  # 30d window
WEEKS = {  # a Wednesday of ISO weeks 2, 3 and 4 of 2026
    "2026-W02": datetime(2026, 1, 7, 10, tzinfo=UTC),
    "2026-W03": datetime(2026, 1, 14, 10, tzinfo=UTC),
    "2026-W04": datetime(2026, 1, 21, 10, tzinfo=UTC),
}
NIGHT, WAGE = "ht_late_night_inflows", "lt_no_living_costs"
# per rule and week: (reported, false positives), 8 cases a week
PLAN = {
    NIGHT: {"2026-W02": (2, 6), "2026-W03": (4, 4), "2026-W04": (6, 2)},
    WAGE: {"2026-W02": (6, 2), "2026-W03": (4, 4), "2026-W04": (2, 6)},
}
SHARED = [0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95]
"""Values every other feature takes, the same twelve for the reported and the false positives."""


def _cases() -> list[dict]:
    """Each case: id, rule, account, week, disposition, and its k-th place in its class."""
    out = []
    for rule, weeks in PLAN.items():
        seen = {"reported": 0, "false_positive": 0}
        for week, (rep, fp) in weeks.items():
            for d in ["false_positive"] * fp + ["reported"] * rep:
                i = len([c for c in out if c["rule"] == rule])
                out.append(
                    {
                        "case_id": f"C-{rule[:2]}-{i:02d}",
                        "rule": rule,
                        "account": f"{rule[:2].upper()}{i:02d}",
                        "week": week,
                        "disposition": d,
                        "k": seen[d],
                    }
                )
                seen[d] += 1
    # a night case closed without action in week 3 (decided, neither reported nor FP)
    out.append(
        {
            "case_id": "C-ht-nfa",
            "rule": NIGHT,
            "account": "HTNFA",
            "week": "2026-W03",
            "disposition": "no_further_action",
            "k": 0,
        }
    )
    return out


def _feature_row(c: dict, window: tuple[datetime, datetime], **values: float | int) -> dict:
    label = "30d" if (window[1] - window[0]).days == 30 else "7d"
    return {
        "account_id": c["account"],
        "window": label,
        "window_start": window[0],
        "window_end": window[1],
        **values,
    }


def make_run(base: Path) -> Path:
    """A run directory by hand: cases, signals and features of 49 accounts (and a member of a
    case the rule did not fire on), with the two rules copied to base/repo/rules."""
    rules = base / "repo" / "rules"
    rules.mkdir(parents=True)
    for rid in (NIGHT, WAGE):
        shutil.copy(RULES_DIR / f"{rid}.yaml", rules / f"{rid}.yaml")
    run = base / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"params": {"rules_dir": str(rules)}}))
    cases, signals, features = [], [], []
    for c in _cases():
        night = c["rule"] == NIGHT
        accounts = [c["account"]] + (["MEMBER"] if c["case_id"] == "C-ht-00" else [])
        cases.append(
            {
                "case_id": c["case_id"],
                "risk_score": 0.5,
                "rank": len(cases) + 1,
                "accounts": accounts,
                "signal_ids": [c["rule"]],
                "typologies": ["sex_trafficking" if night else "labour_exploitation"],
            }
        )
        window = W1 if night else M1
        signals.append(
            {
                "source": "rule",
                "signal_id": c["rule"],
                "account_id": c["account"],
                "score": 0.75,
                "family": "behaviour",
                "typologies": cases[-1]["typologies"],
                "txn_ids": [],
                "window_start": window[0],
                "window_end": window[1],
                "evidence": "{}",
                "summary": "by hand",
            }
        )
        k, fp = c["k"], c["disposition"] == "false_positive"
        shared = SHARED[(k * 5) % 12]  # a permutation: both classes take all twelve values
        if night:
            payers = 8 + k % 4 if fp else 12 + k  # FPs below 12, reports from 12 up
            features.append(
                _feature_row(
                    c,
                    W1,
                    night_in_payers=payers,
                    night_in_share=shared,
                    median_in_amount=100 * shared,
                )
            )
            # a window the rule did not fire in: its values must not count
            features.append(
                _feature_row(c, W2, night_in_payers=100, night_in_share=0.1, median_in_amount=1.0)
            )
        else:
            features.append(
                _feature_row(c, M1, wage_in_count=1 + k % 3, living_cost_share=shared / 10)
            )
    features.append(_feature_row({"account": "MEMBER"}, W1, night_in_payers=0, night_in_share=0.0))
    pl.DataFrame(cases).write_parquet(run / "cases.parquet")
    pl.DataFrame(
        signals, schema_overrides={"window_start": UTC_US, "window_end": UTC_US}
    ).write_parquet(run / "signals.parquet")
    pl.DataFrame(
        features,
        schema_overrides={
            "window_start": UTC_US,
            "window_end": UTC_US,
            "night_in_payers": pl.Int64,
            "wage_in_count": pl.Int64,
        },
    ).write_parquet(run / "features.parquet")
    return run


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The run, and a SQLite case store where ivy (investigator) and sam (supervisor) decided
    every case through the workflow, each in its week (the workflow's clock set to that day)."""
    from flows87.investigate.store import Store, create_user, load_run
    from flows87.investigate.store import workflow as wf

    base = tmp_path_factory.mktemp("feedback")
    run = make_run(base)
    url = f"sqlite:///{base / 'cases.db'}"
    store = Store.open(url)
    store.upgrade()
    clock = pytest.MonkeyPatch()
    try:
        with store.session() as s:
            ivy = create_user(s, "ivy", "investigator", "ivy-password-1")
            sam = create_user(s, "sam", "supervisor", "sam-password-1")
            load_run(s, run, "2026-01-01T0000Z--2026-01-31T0000Z")
        with store.session() as s:
            ivy, sam = s.merge(ivy), s.merge(sam)
            for c in _cases():
                day = WEEKS[c["week"]]
                clock.setattr(wf, "utcnow", lambda day=day: day)
                wf.assign(s, ivy, c["case_id"], "ivy")
                wf.change_status(s, ivy, c["case_id"], "in_review")
                if c["disposition"] == "reported":
                    wf.request_report(s, ivy, c["case_id"], "night payers, see notes")
                    wf.decide_report(s, sam, c["case_id"], True)
                else:
                    wf.close_case(s, ivy, c["case_id"], c["disposition"], "checked, explained")
    finally:
        clock.undo()
        store.dispose()
    return run, url


def _doc(decided: tuple[Path, str], tmp_path: Path, period: str = "week") -> tuple[dict, dict]:
    run, url = decided
    return feedback(run, tmp_path / "out", db_url=url, period=period)  # type: ignore[arg-type]


def test_precision_per_week_by_hand(decided: tuple[Path, str], tmp_path: Path) -> None:
    doc, _ = _doc(decided, tmp_path)
    night, wage = doc["rules"][NIGHT], doc["rules"][WAGE]
    assert [
        (p["period"], p["decided"], p["reported"], p["false_positive"], p["precision"])
        for p in night["by_period"]
    ] == [
        ("2026-W02", 8, 2, 6, 0.25),
        ("2026-W03", 9, 4, 4, 0.4444),  # with the case closed without action
        ("2026-W04", 8, 6, 2, 0.75),
    ]
    assert [p["precision"] for p in wage["by_period"]] == [0.75, 0.5, 0.25]
    # overall: disposition_metrics' per-rule precision
    assert (night["decided_cases"], night["reported"], night["false_positive"]) == (25, 12, 12)
    assert night["precision"] == 0.48 and wage["precision"] == 0.5
    # weighted least squares through (0, .25) x8, (1, .4444) x9, (2, .75) x8
    x, y, w = np.array([0, 1, 2.0]), np.array([0.25, 0.4444, 0.75]), np.array([8, 9, 8.0])
    xm, ym = np.average(x, weights=w), np.average(y, weights=w)
    slope = np.sum(w * (x - xm) * (y - ym)) / np.sum(w * (x - xm) ** 2)
    assert night["slope"] == pytest.approx(slope, abs=1e-4) and night["trend"] == "rising"
    assert wage["slope"] == pytest.approx(-0.25) and wage["trend"] == "falling"
    assert (night["first"], night["last"]) == (0.25, 0.75)


def test_precision_per_month(decided: tuple[Path, str], tmp_path: Path) -> None:
    doc, _ = _doc(decided, tmp_path, "month")
    (jan,) = doc["rules"][NIGHT]["by_period"]
    assert (jan["period"], jan["decided"], jan["precision"]) == ("2026-01", 25, 0.48)
    assert doc["rules"][NIGHT]["trend"] == "too few periods"


def test_iso_week_crosses_the_year() -> None:
    d = pl.DataFrame(
        {
            "case_id": ["a", "b"],
            "disposition": ["reported", "false_positive"],
            "signal_ids": [["r"], ["r"]],
            "decided_at": [datetime(2027, 1, 1, tzinfo=UTC), datetime(2026, 12, 28, tzinfo=UTC)],
        }
    )
    # 1 January 2027 is a Friday of ISO week 53 of 2026, like Monday 28 December 2026
    (row,) = precision_by_period(d, "week").to_dicts()
    assert (row["period"], row["decided"], row["precision"]) == ("2026-W53", 2, 0.5)


def test_clustered_false_positives_get_a_patch_raising_the_param(
    decided: tuple[Path, str], tmp_path: Path
) -> None:
    doc, paths = _doc(decided, tmp_path)
    night = doc["rules"][NIGHT]
    c = night["cluster"]
    # the case member the rule did not fire on is no hit; the NFA case is neither side
    assert (c["reported"], c["false_positives"], c["no_further_action"]) == (12, 12, 1)
    assert c["top"][0]["feature"] == "night_in_payers" and c["top"][0]["fp_removed"] == 12
    sug = night["suggestion"]
    assert sug["kind"] == "parameter" and sug["param"] == f"{NIGHT}.n"
    # FPs have 8..11 payers in the window the rule fired in, reports 12 and more
    assert (sug["from"], sug["to"]) == (8, 12)
    assert (sug["fp_removed"], sug["reported_kept"]) == (12, 12)
    patch = paths[f"patch:{NIGHT}"]
    assert patch == tmp_path / "out" / "patches" / f"{NIGHT}.patch"
    text = patch.read_text()
    assert text.startswith(f"--- a/rules/{NIGHT}.yaml\n+++ b/rules/{NIGHT}.yaml\n")
    repo = decided[0].parent / "repo"
    work = tmp_path / "repo"
    shutil.copytree(repo, work)
    subprocess.run(["git", "apply", str(patch)], cwd=work, check=True)
    rule = load_rule(work / "rules" / f"{NIGHT}.yaml")
    assert rule.params["n"].default == 12 and rule.params["p"].default == 0.5


def test_unclustered_false_positives_get_no_patch(
    decided: tuple[Path, str], tmp_path: Path
) -> None:
    doc, paths = _doc(decided, tmp_path)
    wage = doc["rules"][WAGE]
    assert wage["cluster"]["false_positives"] == 12 and wage["suggestion"] is None
    assert "do not cluster" in wage["cluster"]["note"]
    assert f"patch:{WAGE}" not in paths
    assert not (tmp_path / "out" / "patches" / f"{WAGE}.patch").exists()


def test_too_few_false_positives_are_not_looked_at(
    decided: tuple[Path, str], tmp_path: Path
) -> None:
    from flows87.research.evaluate.dispositions import load_dispositions
    from flows87.research.feedback import rule_feedback
    from flows87.research.feedback.settings import FeedbackSettings

    run, url = decided
    d = load_dispositions(url)
    assert d is not None
    doc = rule_feedback(run, d, settings=FeedbackSettings(min_false_positives=13))
    assert doc["rules"][NIGHT]["suggestion"] is None
    assert "Too few" in doc["rules"][NIGHT]["cluster"]["note"]


def test_cli_writes_its_files(decided: tuple[Path, str], tmp_path: Path, capsys) -> None:
    run, url = decided
    out = tmp_path / "fb"
    assert main(["feedback", str(run), "--db", url, "--out", str(out)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert NIGHT in printed and "rising" in printed and "n: 8 -> 12" in printed
    doc = json.loads((out / "feedback.json").read_text())
    assert doc["rules"][NIGHT]["suggestion"]["patch_file"] == str(
        out / "patches" / f"{NIGHT}.patch"
    )
    md = (out / "feedback.md").read_text()
    assert (
        "2026-W03" in md
        and "`night_in_payers >= 12`" in md
        and "from 8 to 12" in md
        and "git apply" in md
    )
    assert sorted(p.name for p in (out / "patches").iterdir()) == [f"{NIGHT}.patch"]
    # default folder: RUN/feedback
    assert main(["feedback", str(run), "--db", url, "--period", "month"]) == EXIT_OK
    assert (run / "feedback" / "feedback.json").exists()
    shutil.rmtree(run / "feedback")


def test_cli_without_dispositions_is_a_user_error(
    decided: tuple[Path, str], tmp_path: Path
) -> None:
    run, _ = decided
    assert main(["feedback", str(run), "--db", str(tmp_path / "none.db")]) == EXIT_USER


def test_bounds_read_from_conditions() -> None:
    assert bounds(":n <= x AND y * 2 >= :q AND z >= :a + 1 AND COALESCE(v, 0) < :c") == [
        Bound("x", ">=", "n"),
        Bound("v", "<", "c"),
    ]
    assert bounds("out_in_ratio BETWEEN :lo AND :hi") == [
        Bound("out_in_ratio", ">=", "lo"),
        Bound("out_in_ratio", "<=", "hi"),
    ]


values = st.lists(
    st.one_of(st.integers(0, 30).map(float), st.just(math.nan)), min_size=0, max_size=25
)


@settings(max_examples=200, deadline=None)
@given(values, values, st.sampled_from(["above", "below"]), st.sampled_from([0.5, 0.9, 1.0]))
def test_best_threshold_matches_brute_force(
    rep: list[float], fps: list[float], keeps: str, share: float
) -> None:
    r, f = np.array(rep, dtype=float), np.array(fps, dtype=float)
    need = math.ceil(share * r.size - 1e-9)

    def effect(t: float) -> tuple[int, int]:
        side = (lambda v: v >= t) if keeps == "above" else (lambda v: v <= t)
        kept = sum(1 for v in r if not math.isnan(v) and side(v))
        removed = sum(1 for v in f if not math.isnan(v) and not side(v))
        return kept, removed

    grid = [x / 2 for x in range(-2, 64)]
    best = max((effect(t)[1] for t in grid if effect(t)[0] >= need), default=0)
    found = best_threshold(r, f, keeps, share)  # type: ignore[arg-type]
    if best == 0:
        assert found is None
        return
    assert found is not None
    t, kept, removed = found
    assert removed == best and kept >= need
    assert effect(t) == (kept, removed)
