"""`flows87 bench`: the pipeline on a labelled input with a time split, against a GFP baseline.

The input's time range is cut at `split` (rounded down to midnight UTC when the range spans
days): the report period runs from the cut to the end, and the tuning period is, by default
(`tune_on="report-length"`), the period of the same length just before the cut (all of the
time before the cut when that is shorter): risk scores and account aggregates depend on the
length of the window they are computed over, so a threshold tuned on 7 days does not fill the
same budget on 3. `tune_on="all"` tunes on everything before the cut (the old behaviour). The
pipeline runs on each period (the tuning run and the report run), each a `flows87.pipeline.run.run`
with its interval selected from the same input; both intervals are in the report. Tuning reads
the tuning run only, and only the labels of accounts active in it: the score threshold that
fills the alert budget, and with `sweep_n` a sweep of rule parameters whose chosen setting the
report run then uses. The report run is measured against its labels: recall and precision at
the budget, recall at the tuned threshold, PR-AUC of accounts_scored.risk_score, precision of
the top cases, and transactions per second per stage. With `gfp`, IBM's Graph Feature
Preprocessor features (the `gfp_patterns` chosen, recorded in the report) with an Isolation
Forest go through the same periods, population and budget.

Modules: `periods` (the time split), `benchmark` (the runs and the tuning), `runfiles` (what
is read from a run directory), `metrics` (ranking metrics of any scored population), `gfp` and
`baseline` (the GFP + IForest baseline), `report` (bench.md).
"""

from __future__ import annotations

from flows87.research.bench.benchmark import bench
from flows87.research.bench.periods import TUNE_ON, split_time, time_range, tune_interval
from flows87.research.bench.report import markdown, table

__all__ = ["TUNE_ON", "bench", "markdown", "split_time", "table", "time_range", "tune_interval"]
