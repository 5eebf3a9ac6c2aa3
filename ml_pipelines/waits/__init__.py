"""External waits (`type: ExternalTaskSensor`): the old ExternalTaskSensor's semantics on one
Dagster sensor.

`sensor.py` the `ml_pipelines_waits` sensor (added by `location.py`); `index.py` what it needs
of the loaded configs; `states.py` Airflow's states read from Dagster's event log; `airflow.py`
the Airflow REST API (v1 and v2) through dagster-airlift. Where a wait's awaited pipeline
runs is decided in `config/waits.py` (pure).
"""
