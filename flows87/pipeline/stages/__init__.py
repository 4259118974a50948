"""The pipeline's steps, each a function of a Job (and, per partition, a partition number).

flows87.pipeline.plan lists them in order; the Airflow DAG makes a task of each and
`flows87 run` calls them in one process. Each reads its inputs from the run directory (or what
the previous step handed over in memory), records itself in RUN/stages/, and writes its outputs.
"""

from flows87.pipeline.stages.config import RunConfig

__all__ = ["RunConfig"]
