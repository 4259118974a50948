"""The case store against SQLite and a real PostgreSQL server (tests/postgres.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from postgres import make_run
from sqlalchemy import func, inspect, select, text

from flows87.investigate.store import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    Store,
    WorkflowError,
    account_labels,
    allowed_actions,
    assign,
    authenticate,
    case_detail,
    case_graph,
    change_status,
    check_audit,
    close_case,
    comment,
    create_user,
    decide_report,
    export_dispositions,
    head_revision,
    list_cases,
    load_run,
    reopen,
    request_report,
    set_active,
    signal_outcomes,
    verify_audit,
)
from flows87.investigate.store.models import Base, Case, CaseSignal, CaseTransaction

TABLES = sorted(Base.metadata.tables)
AUDIT_KEY = "test-audit-key-for-the-store-tests-0123456789"


@pytest.fixture(autouse=True)
def audit_key(monkeypatch):
    """PostgreSQL stores need a configured audit key (SQLite ones would make a key file)."""
    monkeypatch.setenv("FLOWS87_AUDIT_KEY", AUDIT_KEY)
    monkeypatch.delenv("FLOWS87_AUDIT_KEY_FILE", raising=False)


def _counts(s) -> dict[str, int]:
    return {t: s.scalar(select(func.count()).select_from(Base.metadata.tables[t])) for t in TABLES}


def _snapshot(s) -> dict[str, list[tuple]]:
    out = {}
    for name in TABLES:
        table = Base.metadata.tables[name]
        out[name] = [
            tuple(r) for r in s.execute(select(table).order_by(*table.primary_key.columns))
        ]
    return out


@pytest.fixture
def people(store):
    with store.session() as s:
        create_user(s, "ivy", "investigator", "ivy-password")
        create_user(s, "ian", "investigator", "ian-password")
        create_user(s, "sam", "supervisor", "sam-password")
        create_user(s, "sue", "supervisor", "sue-password")
        create_user(s, "ada", "admin", "ada-password")
    return store


def _user(s, name):
    from flows87.investigate.store import get_user

    return get_user(s, name)


@pytest.fixture
def loaded(people, tmp_path):
    with people.session() as s:
        load_run(s, make_run(tmp_path / "run1"), "2026-01-01")
    return people


def test_migrations_upgrade_from_empty_and_downgrade_to_base(backend):
    st = Store.open(backend)
    try:
        assert st.current_revision() is None
        st.upgrade()
        assert st.current_revision() == head_revision()
        st.upgrade()  # idempotent
        names = set(inspect(st.engine).get_table_names())
        assert set(TABLES) <= names
        # the migration creates what the models describe
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        with st.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert [
            d for d in diffs if d[0] in ("add_table", "remove_table", "add_column", "remove_column")
        ] == []
        st.check_schema()
        st.downgrade("base")
        assert st.current_revision() is None
        assert set(inspect(st.engine).get_table_names()) <= {"alembic_version"}
    finally:
        st.dispose()


def test_loading_the_same_run_twice_changes_nothing(people, tmp_path):
    run = make_run(tmp_path / "run")
    with people.session() as s:
        first = load_run(s, run, "2026-01-01")
    assert (first.new, first.updated, first.cases) == (3, 0, 3)
    with people.session() as s:
        before = _snapshot(s)
        counts = _counts(s)
    assert (
        counts["cases"] == 3 and counts["case_transactions"] == 11 and counts["case_signals"] == 4
    )
    with people.session() as s:
        again = load_run(s, run, "2026-01-01")
    assert (again.new, again.updated, again.unchanged) == (0, 0, 3)
    with people.session() as s:
        assert _snapshot(s) == before
        assert verify_audit(s) is None


def test_reload_with_changed_evidence_keeps_history(loaded, tmp_path):
    with loaded.session() as s:
        ivy = _user(s, "ivy")
        change_status(s, ivy, "C-aaa", "in_review")
        comment(s, ivy, "C-aaa", "Night-time inflows from many payers.")
    with loaded.session() as s:
        result = load_run(s, make_run(tmp_path / "run2", variant=2), "2026-01-02")
    assert (result.new, result.updated, result.unchanged) == (0, 1, 2)
    with loaded.session() as s:
        d = case_detail(s, "C-aaa")
        assert d["case"]["risk_score"] == 0.95
        assert d["case"]["status"] == "in_review" and d["case"]["assignee"] == "ivy"
        assert [n["body"] for n in d["notes"]] == ["Night-time inflows from many payers."]
        assert "fa_structuring" in {x["signal_id"] for x in d["signals"]}
        assert "T900" in {t["txn_id"] for t in d["transactions"]}
        assert [i["interval"] for i in d["intervals"]] == ["2026-01-01", "2026-01-02"]
        actions = [a["action"] for a in reversed(d["audit"])]
        assert actions == [
            "case.created",
            "case.status.in_review",
            "case.commented",
            "case.evidence_updated",
        ]
        assert (
            d["audit"][0]["before"]["risk_score"] == 0.9
            and d["audit"][0]["after"]["risk_score"] == 0.95
        )
        assert s.scalar(select(func.count()).select_from(Case)) == 3
        assert s.scalar(select(func.count()).where(CaseSignal.case_id == "C-aaa")) == 3
    # an older interval loaded late does not overwrite the newer evidence
    with loaded.session() as s:
        late = load_run(s, make_run(tmp_path / "run0"), "2025-12-31")
        assert late.updated == 0
        assert case_detail(s, "C-aaa")["case"]["risk_score"] == 0.95
        assert verify_audit(s) is None


def test_roles_are_checked_in_the_service(loaded):
    with loaded.session() as s:
        ivy, ian, sam, sue = (_user(s, n) for n in ("ivy", "ian", "sam", "sue"))
        with pytest.raises(PermissionDenied):
            assign(s, ivy, "C-aaa", "ian")  # investigators do not assign others
        assign(s, ivy, "C-aaa", "ivy")  # but take a free case
        with pytest.raises(PermissionDenied):
            change_status(s, ian, "C-aaa", "in_review")  # not ian's case
        change_status(s, ivy, "C-aaa", "in_review")
        request_report(s, ivy, "C-aaa", "Proceeds of sexual exploitation, see notes")
        with pytest.raises(PermissionDenied, match="supervisor or above"):
            decide_report(s, ivy, "C-aaa", True)  # an investigator cannot approve
        with pytest.raises(PermissionDenied):
            decide_report(s, ian, "C-aaa", True)
        assert "decide_report" not in allowed_actions(s, ivy, s.get(Case, "C-aaa"))
        assert "decide_report" in allowed_actions(s, sam, s.get(Case, "C-aaa"))
        approval = decide_report(s, sam, "C-aaa", True, "Agreed")
        assert approval.state == "approved"
        case = s.get(Case, "C-aaa")
        assert (case.status, case.disposition) == ("closed", "reported")
        # four eyes: a supervisor cannot approve their own request
        assign(s, sam, "C-bbb", "sue")
        change_status(s, sue, "C-bbb", "in_review")
        request_report(s, sue, "C-bbb", "Wage recapture by the employer")
        with pytest.raises(PermissionDenied, match="four-eyes"):
            decide_report(s, sue, "C-bbb", True)
        with pytest.raises(PermissionDenied):
            reopen(s, ivy, "C-aaa", "more evidence")
        # a deactivated user can do nothing
        set_active(s, "ian", False, actor=_user(s, "ada"))
        with pytest.raises(PermissionDenied):
            comment(s, ian, "C-ccc", "hello")
        with pytest.raises(PermissionDenied):
            set_active(s, "ivy", False, actor=sam)  # only admins manage users


def test_status_transitions_and_closing_rules(loaded):
    with loaded.session() as s:
        ivy, sam = _user(s, "ivy"), _user(s, "sam")
        with pytest.raises(WorkflowError, match="cannot go from new to escalated"):
            change_status(s, ivy, "C-ccc", "escalated")
        with pytest.raises(WorkflowError, match="is new"):
            close_case(s, ivy, "C-ccc", "false_positive", "nothing there")
        with pytest.raises(InvalidInput):
            change_status(s, ivy, "C-ccc", "closed")
        change_status(s, ivy, "C-ccc", "in_review")
        for reason in ("", "   ", None):
            with pytest.raises(InvalidInput, match="reason"):
                close_case(s, ivy, "C-ccc", "false_positive", reason)
        with pytest.raises(InvalidInput, match="disposition"):
            close_case(s, ivy, "C-ccc", "dismissed", "some reason")
        with pytest.raises(WorkflowError, match="approval"):
            close_case(s, ivy, "C-ccc", "reported", "STR filed")
        change_status(s, ivy, "C-ccc", "escalated")
        with pytest.raises(PermissionDenied):
            close_case(s, ivy, "C-ccc", "false_positive", "cash business")  # escalated: supervisor
        request_report(s, sam, "C-ccc", "structuring")
        with pytest.raises(InvalidInput, match="rejection"):
            decide_report(s, _user(s, "sue"), "C-ccc", False)
        decide_report(s, _user(s, "sue"), "C-ccc", False, "Not enough: the deposits are payroll")
        close_case(s, sam, "C-ccc", "no_further_action", "Cash-intensive restaurant, known")
        case = s.get(Case, "C-ccc")
        assert (case.status, case.disposition, case.close_reason) == (
            "closed",
            "no_further_action",
            "Cash-intensive restaurant, known",
        )
        with pytest.raises(WorkflowError, match="closed"):
            change_status(s, sam, "C-ccc", "escalated")
        reopen(s, sam, "C-ccc", "new deposits")
        assert s.get(Case, "C-ccc").status == "in_review"
        with pytest.raises(NotFound):
            change_status(s, sam, "C-nope", "in_review")
        assert verify_audit(s) is None


def _disable_append_only(s, dialect: str) -> None:
    """What someone with the database owner's rights can do: drop the refusal triggers."""
    if dialect == "sqlite":
        s.execute(text("DROP TRIGGER audit_log_no_update"))
        s.execute(text("DROP TRIGGER audit_log_no_delete"))
    else:
        s.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))


def test_audit_chain_detects_an_edited_and_a_deleted_entry(loaded):
    with loaded.session() as s:
        ivy = _user(s, "ivy")
        change_status(s, ivy, "C-aaa", "in_review")
        comment(s, ivy, "C-aaa", "first note")
        close_case(s, ivy, "C-aaa", "false_positive", "Landlord collecting rent")
    dialect = loaded.engine.dialect.name
    with loaded.session() as s:
        status = check_audit(s)
        assert status.ok and status.entries >= 10
        n = status.entries
    # the database itself refuses changes
    with pytest.raises(Exception, match="append-only"), loaded.session() as s:
        s.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"))
    with loaded.session() as s:
        _disable_append_only(s, dialect)
        target = s.execute(text("SELECT seq FROM audit_log WHERE action = 'case.closed'")).scalar()
        s.execute(
            text("UPDATE audit_log SET after = :a WHERE seq = :q"),
            {"a": '{"disposition":"reported"}', "q": target},
        )
    with loaded.session() as s:
        broken = verify_audit(s)
        assert broken is not None and broken.seq == target and "edited" in broken.reason
    # deleting an entry in the middle is detected too
    with loaded.session() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq >= :q"), {"q": target})  # drop the edit
        assert verify_audit(s) is None  # the chain up to target-1 is intact
        s.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    with loaded.session() as s:
        broken = verify_audit(s)
        assert broken is not None and broken.seq == 2 and "missing" in broken.reason
        assert check_audit(s).entries == 1 < n


def test_filter_values_cannot_inject_sql(loaded):
    with loaded.session() as s:
        assert list_cases(s).total == 3
        for bad in ("x' OR 1=1 --", "' OR '1'='1", "fan_in'; DROP TABLE cases; --"):
            assert list_cases(s, typology=bad).total == 0
            assert list_cases(s, assignee=bad).total == 0
            assert list_cases(s, search=bad).total == 0
            assert list_cases(s, status=[]).total == 3
            with pytest.raises(InvalidInput):
                list_cases(s, status=bad)
            with pytest.raises(InvalidInput):
                list_cases(s, sort=bad)
        assert list_cases(s, search="C-%").total == 0  # LIKE wildcards are escaped
        assert list_cases(s).total == 3  # the table is still there


def test_queue_filters_sorts_and_pages(loaded):
    with loaded.session() as s:
        ivy = _user(s, "ivy")
        assign(s, ivy, "C-bbb", "ivy")
        page = list_cases(s, sort="-risk", page_size=2)
        assert [r["case_id"] for r in page.items] == ["C-aaa", "C-bbb"]
        assert (page.total, page.pages) == (3, 2)
        assert [r["case_id"] for r in list_cases(s, sort="-risk", page=2, page_size=2).items] == [
            "C-ccc"
        ]
        assert [r["case_id"] for r in list_cases(s, sort="risk").items] == [
            "C-ccc",
            "C-bbb",
            "C-aaa",
        ]
        assert [r["case_id"] for r in list_cases(s, typology="fan_in").items] == ["C-aaa"]
        assert {r["case_id"] for r in list_cases(s, typology=["fan_in", "structuring"]).items} == {
            "C-aaa",
            "C-ccc",
        }
        assert [r["case_id"] for r in list_cases(s, assignee="ivy").items] == ["C-bbb"]
        assert list_cases(s, assignee="-").total == 2
        assert [r["case_id"] for r in list_cases(s, min_risk=0.6, max_risk=0.8).items] == ["C-bbb"]
        jan20 = datetime(2026, 1, 20, tzinfo=UTC)
        assert [r["case_id"] for r in list_cases(s, date_from=jan20).items] == ["C-ccc"]
        assert {r["case_id"] for r in list_cases(s, date_to=jan20).items} == {"C-aaa", "C-bbb"}
        assert [r["case_id"] for r in list_cases(s, search="A2").items] == ["C-aaa"]
        change_status(s, ivy, "C-bbb", "in_review")
        assert [r["case_id"] for r in list_cases(s, status="in_review").items] == ["C-bbb"]
        row = list_cases(s, status="in_review").items[0]
        assert row["assignee"] == "ivy" and row["typologies"] == ["labour_exploitation"]
        assert row["headline"].startswith("2 accounts")


def test_case_detail_has_rule_descriptions_and_graph(loaded):
    with loaded.session() as s:
        d = case_detail(s, "C-aaa")
        by_id = {x["signal_id"]: x for x in d["signals"]}
        rule = by_id["ml_fan_in"]["rule"]
        assert rule["title"] and rule["description"] and rule["references"]
        assert by_id["ht_late_night_inflows"]["evidence"] == {"count": 3, "instance": "x"}
        assert {r["family"] for r in d["risk_breakdown"]} == {"behaviour", "network"}
        assert abs(sum(r["share"] for r in d["risk_breakdown"]) - 1.0) < 1e-3
        assert [a["account_id"] for a in d["accounts"]] == ["A1", "A2", "A3"]
        assert d["accounts"][0]["role"] == "anchor" and d["accounts"][0]["name"] == "Ann Example"
        assert [t["txn_id"] for t in d["transactions"]] == ["T000", "T001", "T004", "T005", "T008"]
        g = case_graph(s, "C-aaa")
        assert {(e["src"], e["dst"]) for e in g["edges"]} == {("A1", "A2"), ("A2", "A3")}
        assert next(n for n in g["nodes"] if n["id"] == "A2")["flow_in"] > 0
        assert case_detail(s, "C-ccc")["signals"][0]["rule"]["title"].startswith("Unusual")


def test_users_and_authentication(people):
    with people.session() as s:
        ivy = _user(s, "ivy")
        assert ivy.password_hash.startswith("$argon2")
        assert "ivy-password" not in ivy.password_hash
        assert authenticate(s, "ivy", "ivy-password").username == "ivy"
        assert authenticate(s, "ivy", "wrong-password") is None
        assert authenticate(s, "nobody", "ivy-password") is None
        with pytest.raises(InvalidInput):
            create_user(s, "ivy", "investigator", "another-password")
        with pytest.raises(InvalidInput):
            create_user(s, "bob", "superuser", "another-password")
        with pytest.raises(InvalidInput):
            create_user(s, "bob", "investigator", "short")
        with pytest.raises(PermissionDenied):
            create_user(s, "bob", "investigator", "long-enough", actor=ivy)
        set_active(s, "ivy", False)
        assert authenticate(s, "ivy", "ivy-password") is None


def test_dispositions_become_labels(loaded):
    with loaded.session() as s:
        ivy, sam = _user(s, "ivy"), _user(s, "sam")
        change_status(s, ivy, "C-aaa", "in_review")
        request_report(s, ivy, "C-aaa", "controller collecting from victims")
        decide_report(s, sam, "C-aaa", True)
        change_status(s, sam, "C-bbb", "in_review")
        close_case(s, sam, "C-bbb", "false_positive", "payroll of a cleaning company")
        d = export_dispositions(s)
        assert d.columns[:5] == ["case_id", "accounts", "disposition", "reason", "decided_at"]
        assert dict(zip(d["case_id"], d["disposition"], strict=True)) == {
            "C-aaa": "reported",
            "C-bbb": "false_positive",
        }
        assert d.filter(d["case_id"] == "C-aaa")["accounts"].to_list() == [["A1", "A2", "A3"]]
        labels = account_labels(s)
        assert labels.filter(labels["account_id"] == "B1")["reported"].to_list() == [False]
        out = signal_outcomes(s)
        row = out.filter(out["signal_id"] == "ml_fan_in").to_dicts()[0]
        assert (row["reported"], row["false_positive"], row["source"]) == (1, 0, "graph")
        assert out.filter(out["signal_id"] == "lt_wage_sweep")["false_positive"].to_list() == [1]
        # a reopened case's decision no longer counts
        reopen(s, sam, "C-bbb", "new evidence")
        assert export_dispositions(s)["case_id"].to_list() == ["C-aaa"]
        assert export_dispositions(s, latest_only=False).height == 2


def test_case_transactions_are_bulk_loaded(store, tmp_path):
    """A run with many cases and transactions loads in one go, and again without changes."""
    import polars as pl

    run = make_run(tmp_path / "big")
    n_cases, per = 300, 40
    txns = pl.read_parquet(run / "transactions.parquet")
    big_txn = pl.concat(
        [
            txns.head(1).with_columns(pl.lit(f"X{i:06d}").alias("txn_id"))
            for i in range(n_cases * per)
        ]
    )
    big_txn.write_parquet(run / "transactions.parquet")
    cases = pl.read_parquet(run / "cases.parquet")
    template = cases.head(1)
    big_cases = pl.concat(
        [
            template.with_columns(
                pl.lit(f"C-{i:05d}").alias("case_id"),
                pl.lit([f"X{j:06d}" for j in range(i * per, (i + 1) * per)]).alias("txn_ids"),
            )
            for i in range(n_cases)
        ]
    )
    big_cases.write_parquet(run / "cases.parquet")
    with store.session() as s:
        r = load_run(s, run, "big")
    assert (r.new, r.transactions) == (n_cases, n_cases * per)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(CaseTransaction)) == n_cases * per
        again = load_run(s, run, "big")
    assert (again.new, again.updated) == (0, 0)


def test_equal_risk_is_ordered_by_the_pipelines_rank(loaded):
    """Many cases saturate at risk 1.0; the queue then follows the pipeline's ranking."""
    with loaded.session() as s:
        s.execute(text("UPDATE cases SET risk_score = 1.0"))
        for case_id, rank in (("C-ccc", 1), ("C-aaa", 2), ("C-bbb", 3)):
            s.execute(
                text("UPDATE cases SET rank = :r WHERE case_id = :c"), {"r": rank, "c": case_id}
            )
    with loaded.session() as s:
        assert [r["case_id"] for r in list_cases(s, sort="-risk").items] == [
            "C-ccc",
            "C-aaa",
            "C-bbb",
        ]
        assert [r["case_id"] for r in list_cases(s, sort="risk").items] == [
            "C-bbb",
            "C-aaa",
            "C-ccc",
        ]


def test_risk_reason_is_loaded_when_the_run_has_it(people, tmp_path):
    import polars as pl

    run = make_run(tmp_path / "run")
    with people.session() as s:
        load_run(s, run, "2026-01-01")
        assert s.get(Case, "C-aaa").risk_reason is None
    cases = run / "cases.parquet"
    frame = pl.read_parquet(cases)
    reasons = [f"why {c}" for c in frame["case_id"]]
    frame.with_columns(pl.Series("risk_reason", reasons)).write_parquet(cases)
    with people.session() as s:
        again = load_run(s, run, "2026-01-02")
        assert again.updated == 3  # the reason is evidence: the cases changed
        assert s.get(Case, "C-aaa").risk_reason == "why C-aaa"
    with people.session() as s:
        assert load_run(s, run, "2026-01-02").unchanged == 3
    frame.write_parquet(cases)  # a later run without the column clears the stale reason
    with people.session() as s:
        load_run(s, run, "2026-01-03")
        assert s.get(Case, "C-aaa").risk_reason is None
        assert verify_audit(s) is None
