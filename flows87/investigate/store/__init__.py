"""The case store: cases, evidence, users, workflow and a hash-chained audit log (issue 5).

The web layer and the CLI call these functions; each takes a SQLAlchemy Session (from
`Store.session()`), checks the acting user's role itself and writes an audit entry; none commits
(the `with store.session()` block does).
"""

from flows87.investigate.store import shared_state  # noqa: F401  (its tables on Base.metadata)
from flows87.investigate.store.audit import (
    AuditBreak,
    AuditStatus,
    audit_entries,
    check_audit,
    verify_audit,
)
from flows87.investigate.store.db import Store, default_url, head_revision, make_engine, resolve_url
from flows87.investigate.store.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    StoreError,
    WorkflowError,
)
from flows87.investigate.store.feedback import account_labels, export_dispositions, signal_outcomes
from flows87.investigate.store.graph import account_counterparties, case_graph
from flows87.investigate.store.loader import LoadResult, load_run
from flows87.investigate.store.models import DISPOSITIONS, ROLES, STATUSES, User
from flows87.investigate.store.queries import (
    UNASSIGNED,
    CasePage,
    case_detail,
    list_cases,
    rule_info,
)
from flows87.investigate.store.users import (
    authenticate,
    create_user,
    get_user,
    get_user_by_id,
    list_users,
    set_active,
    set_password,
    set_role,
)
from flows87.investigate.store.workflow import (
    TRANSITIONS,
    allowed_actions,
    assign,
    change_status,
    close_case,
    comment,
    decide_report,
    get_case,
    reopen,
    request_report,
)

__all__ = [
    "TRANSITIONS",
    "UNASSIGNED",
    "CasePage",
    "account_labels",
    "allowed_actions",
    "assign",
    "case_detail",
    "account_counterparties",
    "case_graph",
    "change_status",
    "close_case",
    "comment",
    "decide_report",
    "export_dispositions",
    "get_case",
    "list_cases",
    "reopen",
    "request_report",
    "rule_info",
    "signal_outcomes",
    "DISPOSITIONS",
    "ROLES",
    "STATUSES",
    "AuditBreak",
    "AuditStatus",
    "InvalidInput",
    "LoadResult",
    "NotFound",
    "PermissionDenied",
    "Store",
    "StoreError",
    "User",
    "WorkflowError",
    "audit_entries",
    "authenticate",
    "check_audit",
    "create_user",
    "default_url",
    "get_user",
    "get_user_by_id",
    "head_revision",
    "list_users",
    "load_run",
    "make_engine",
    "resolve_url",
    "set_active",
    "set_password",
    "set_role",
    "verify_audit",
]
