"""flows87: money flows linked to human trafficking and forced labour (SDG 8.7)."""

import os

# polars allocates through its own jemalloc (prefix _rjem_), which by default keeps freed pages
# for ten seconds: a stage's peak then adds to the memory the stages before it freed but had
# not yet returned (`flows87 run` runs them all in one process). Returning freed pages within a
# second, from a background thread, lowered the 5M hub-heavy run's peak from 4,143 to 3,982 MB
# and cost no time (benchmarks/bench_run.py). Read when polars loads, so set before it is
# imported; a value the user set is kept.
os.environ.setdefault(
    "_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"
)

__version__ = "0.1.0"
