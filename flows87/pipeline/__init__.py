"""The pipeline, for the FIU and bank data teams who run it: ingest → quality → features →
rules, detectors, graph → cases → report → publish, one plan run by Airflow or in-process."""
