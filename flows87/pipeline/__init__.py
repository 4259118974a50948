"""The pipeline, run by the FIU and bank data teams: one plan of steps, by Airflow or in-process.

ingest → quality → features → rules, detectors, graph → cases → report → publish; plan.py lists
the steps, stages/ holds them, tasks.py is what the Airflow tasks call, run.py runs the plan in
one process.
"""
