"""The learned scorer measured honestly (issue 16): a learning curve over a time split.

Modules: `labels` (what simulated investigators know: the tuning period's truth, the leak
check), `curve` (train after N reviewed cases, measure today / learned / blend on the report
period, the GFP + XGBoost baseline beside), `report` (the markdown table).
"""

from __future__ import annotations

from flows87.research.learning.curve import CASES, METHODS, learning_curve
from flows87.research.learning.labels import LeakError, check_no_leak, reviewed_labels
from flows87.research.learning.report import markdown, table

__all__ = [
    "CASES",
    "METHODS",
    "LeakError",
    "check_no_leak",
    "learning_curve",
    "markdown",
    "reviewed_labels",
    "table",
]
