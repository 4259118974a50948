"""Quality gates: run an expectations/ suite on a stage's frame, quarantine, report, stop.

The only module of flows87 that imports great_expectations (lazily, when a gate runs).
"""

from flows87.pipeline.quality.gate import GateResult, run_gate
from flows87.pipeline.quality.suites import ON_FAIL, SUITES_DIR, load_suite

__all__ = ["ON_FAIL", "SUITES_DIR", "GateResult", "load_suite", "run_gate"]
