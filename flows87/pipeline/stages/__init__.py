"""The pipeline's stages, each a plain function of (run directory, RunConfig).

`flows87 run` calls them in order; the Airflow DAG calls the same functions as tasks.
"""

from flows87.pipeline.stages.cases import cases
from flows87.pipeline.stages.config import RunConfig
from flows87.pipeline.stages.detect import anomalies, features, gate_signals, graph, rules
from flows87.pipeline.stages.ingest import gate_raw, ingest, read
from flows87.pipeline.stages.report import report

ORDER = ("ingest", "features", "rules", "detectors", "graph", "signals", "cases", "report")

__all__ = [
    "ORDER",
    "RunConfig",
    "anomalies",
    "cases",
    "features",
    "gate_raw",
    "gate_signals",
    "graph",
    "ingest",
    "read",
    "report",
    "rules",
]
