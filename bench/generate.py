"""Generate a project of N pipelines (6 steps each: external wait, container image,
notebook, Glue job, Python script, SQL load), cron-partitioned, for the load benchmark."""

from __future__ import annotations

import json
import sys
from pathlib import Path

CRONS = [f"{m} {h} * * *" for h in range(0, 24, 2) for m in (0, 15, 30, 45, 55)]  # 60 distinct crons

NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Bench model\n", "Forecasts nothing."]},
        {
            "cell_type": "code",
            "metadata": {"tags": ["parameters"]},
            "execution_count": None,
            "outputs": [],
            "source": ["dt = ''"],
        },
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": ["print(dt)"]},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}

CONFIG = """\
CommonConf: !include common/snowflake.yml
dags:
  sagemaker:
    domain: "bench"
    sub_domain: "p{i:04d}"
    action: "Daily"
    default_args:
      owner: "bench@example.com"
      start_date: "2024-1-{day}"
      retries: 1
      retry_delay: 5
    schedule_interval: "{cron}"
    max_active_runs: 1
    catchup: False
    schema: "BENCH"
    model_name: "Bench_Model"
    glue_model_name: "Bench_Glue"
    tasks:
      - name: "external_task_dag_status"
        type: "ExternalTaskSensor"
        external_dag_details:
          external_dag_id: "{upstream}"
          external_task_id: "write_to_snowflake"
          allowed_states: "success"
          poke_interval: 60 * 5
          mode: "reschedule"
          execution_delta: timedelta(hours=0)
      - name: "ecr_container_creation"
        type: "BashOperator"
        kernel: "python3"
      - name: "sagemaker_notebook_job_processing_script"
        type: "BashOperator"
        notebook_name: "Bench_V1"
        Details: {{instance_type: "ml.m5.large", instance_count: 1, volume_size_InGB: 40}}
        templates_dict: {{dt: "{{{{ macros.ds_add(ds, 1) }}}}"}}
        BucketIOConfig: {{DEV: {{model_bucket: "bench-dev"}}, BETA: {{model_bucket: "bench-beta"}}, PROD: {{model_bucket: "bench-prod"}}}}
        upstream_task_name: ["ecr_container_creation", "external_task_dag_status"]
      - name: "glue_job_processing_script"
        type: "BashOperator"
        Details: {{script_name: "bench_job", script_loc: "model", worker_type: "G.1X", number_of_workers: "10"}}
        BucketIOConfig: {{DEV: {{model_bucket: "bench-dev"}}}}
        upstream_task_name: "sagemaker_notebook_job_processing_script"
      - name: "python_script_check"
        type: "BashOperator"
        model_type: "glue"
        script_loc: "model"
        script_name: "check"
        upstream_task_name: "glue_job_processing_script"
      - name: "write_to_snowflake"
        templates_dict: {{dt: "{{{{ ds }}}}"}}
        sql_file_names: ["load.sql"]
        upstream_task_name: "python_script_check"
"""


def generate(root: Path, count: int) -> Path:
    (root / "model_configs" / "common").mkdir(parents=True, exist_ok=True)
    (root / "model_configs" / "common" / "snowflake.yml").write_text("account: bench\nwarehouse: BENCH_WH\n")
    model = root / "Sagemaker_Models" / "Bench_Model"
    (model / "pipeline").mkdir(parents=True, exist_ok=True)
    (model / "Bench_V1.ipynb").write_text(json.dumps(NOTEBOOK))
    (model / "parameters.json").write_text(json.dumps({"COMMON": {"n": 1}, "DEV": {}, "BETA": {}, "PROD": {}}))
    (model / "requirements.txt").write_text("pandas\n")
    (model / "pipeline" / "load.sql").write_text(
        "CREATE TABLE IF NOT EXISTS BENCH_T (dt DATE);\nINSERT INTO BENCH_T VALUES ('{{ dt }}');\n"
    )
    glue = root / "Glue_Models" / "Bench_Glue"
    (glue / "python_scripts").mkdir(parents=True, exist_ok=True)
    (glue / "bench_job.py").write_text("print('glue')\n")
    (glue / "python_scripts" / "check.py").write_text("print('check')\n")
    for i in range(count):
        upstream = f"bench_p{(i - 1) % count:04d}_Daily"
        text = CONFIG.format(i=i, day=1 + i % 28, cron=CRONS[i % len(CRONS)], upstream=upstream)
        (root / "model_configs" / f"bench_{i:04d}.yml").write_text(text)
    return root


if __name__ == "__main__":
    generate(Path(sys.argv[1]), int(sys.argv[2]))
