"""A small project on disk (configs, model folders, variables) for the plan tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import nbformat
import pytest

from ml_pipelines.config.loader import Project, load_project

PIPELINE_ID = "ds_demo_daily"

CONFIG = """\
CommonConf:
  account: acct
  warehouse: wh
  database: DB
  role: ROLE
dags:
  sagemaker:
    domain: ds
    sub_domain: demo
    action: daily
    default_args:
      owner: team-ds
      start_date: 2024-1-1
    schedule_interval: "0 6 * * *"
    schema: ANALYTICS
    model_name: demo
    glue_model_name: gmodel
    tasks:
      - name: ecr_container_creation
        type: BashOperator
        kernel: python3
      - name: sagemaker_notebook_job_processing_script
        type: BashOperator
        notebook_name: Forecast
        Details:
          instance_type: ml.m5.xlarge
          instance_count: 2
        templates_dict:
          dt: "{{ macros.ds_add(ds,1) }}"
          stage: "{{ var.value.CI_STAGING }}"
        BucketIOConfig:
          DEV:
            model_bucket: dev-bucket
          BETA:
            model_bucket: beta-bucket
          PROD:
            model_bucket: "%(prod_bucket)s"
        upstream_task_name: ecr_container_creation
      - name: glue_job_processing_script
        type: BashOperator
        Details:
          script_name: etl
          script_loc: model
          worker_type: G.2X
          number_of_workers: "10"
        templates_dict:
          dt: "{{ ds }}"
        BucketIOConfig:
          DEV:
            model_bucket: dev-bucket
          BETA:
            model_bucket: beta-bucket
          PROD:
            model_bucket: prod-bucket
        upstream_task_name: sagemaker_notebook_job_processing_script
      - name: glue_job_processing_script_common
        type: BashOperator
        Details:
          script_name: shared
          script_loc: common
        BucketIOConfig:
          DEV:
            model_bucket: dev-bucket
          BETA:
            model_bucket: beta-bucket
          PROD:
            model_bucket: prod-bucket
      - name: python_script_check
        type: BashOperator
        script_loc: common
        script_name: check
        templates_dict:
          env: "{{ var.value.ENV }}"
      - name: python_script_model
        type: BashOperator
        model_type: sagemaker
        script_loc: model
        script_name: validate
        param_file_name: validations
      - name: write_to_snowflake
        type: PythonOperator
        sql_file_names:
          - load.sql
          - merge
        templates_dict:
          dt: "{{ macros.ds_add(ds,1) }}"
          yr: "{{ macros.yr(macros.ds_add(ds,1)) }}"
        upstream_task_name: [glue_job_processing_script, glue_job_processing_script_common]
      - name: external_task_dag_status
        type: ExternalTaskSensor
        external_dag_details:
          external_dag_id: other_pipeline
          external_task_id: None
          allowed_states: success,failed
          poke_interval: 60 * 5
          mode: reschedule
          execution_delta: timedelta(hours=1, minutes=30)
"""

UNPARTITIONED = """\
dags:
  sagemaker:
    domain: ds
    sub_domain: adhoc
    action: run
    model_name: demo
    tasks:
      - name: sagemaker_notebook_job_processing_script
        notebook_name: ""
      - name: python_script_check
        script_loc: common
        script_name: check
        templates_dict:
          day: "{{ ds }}"
        upstream_task_name: sagemaker_notebook_job_processing_script
"""

NO_IMAGE = """\
dags:
  sagemaker:
    domain: ds
    sub_domain: noimage
    action: run
    schedule_interval: "@daily"
    default_args:
      start_date: 2024-01-01
    model_name: demo
    tasks:
      - name: sagemaker_notebook_job_processing_script_v2
        notebook_name: Forecast.ipynb
        param_file_name: local_params
"""


def notebook(source: str = "print('hi')") -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Forecast"), nbformat.v4.new_code_cell(source)]
    nb.cells[1].metadata["tags"] = []
    return nbformat.writes(nb)


PARAMS = {
    "COMMON": {"top_n": 25, "flags": {"a": True}},
    "DEV": {"input_path": "s3://dev-data/in/", "dates": ["s3://dev-data/d1"]},
    "BETA": {"input_path": "s3://beta-data/in/", "dates": []},
    "PROD": {"input_path": "s3://prod-data/in/", "dates": []},
}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def build_project(root: Path, prod_bucket: str = "prod-bucket") -> Path:
    write(root / "model_configs" / "demo.yml", CONFIG % {"prod_bucket": prod_bucket})
    write(root / "model_configs" / "adhoc.yml", UNPARTITIONED)
    write(root / "model_configs" / "noimage.yml", NO_IMAGE)
    write(
        root / "model_configs" / "variables.yml",
        "COMMON:\n  CI_STAGING: ci_stage\nPROD:\n  CI_STAGING: ci_stage_prod\n",
    )
    demo = root / "Sagemaker_Models" / "demo"
    write(demo / "Forecast.ipynb", notebook())
    write(demo / "parameters.json", json.dumps(PARAMS, indent=2))
    write(demo / "local_params.json", json.dumps({"COMMON": {"x": 1}, "LOCAL": {"where": "/tmp/x"}}))
    write(demo / "validations.json", json.dumps({"COMMON": {"strict": True}}))
    write(demo / "requirements.txt", "pandas\n")
    write(demo / "lib" / "util.py", "X = 1\n")
    write(demo / "python_scripts" / "validate.py", "print('validate')\n")
    write(
        demo / "pipeline" / "load.sql",
        "insert into t_{{ params.dt | replace('-', '') }} select '{{ dt }}', '{{ yr }}', '{{ ds }}';\n",
    )
    write(demo / "pipeline" / "merge.sql", "merge into t using s on t.d = '{{ macros.ds_add(ds, -1) }}';\n")
    gmodel = root / "Glue_Models" / "gmodel"
    write(gmodel / "etl.py", "print('etl')\n")
    write(
        gmodel / "parameters.json",
        json.dumps(
            {
                "COMMON": {"table": "events"},
                "DEV": {"out": "s3://dev-data/out/"},
                "BETA": {"out": "s3://b/out/"},
                "PROD": {"out": "s3://p/out/"},
            }
        ),
    )
    write(gmodel / "lib" / "helpers.py", "Y = 2\n")
    write(gmodel / "jars" / "dep.jar", "jar-bytes")
    common = root / "Glue_Models" / "common"
    write(common / "shared.py", "print('shared')\n")
    write(common / "shared" / "parameters.json", json.dumps({"COMMON": {"mode": "full"}}))
    write(common / "shared" / "extra.py", "Z = 3\n")
    write(root / "Py_Models" / "check.py", "print('check')\n")
    write(
        root / "Py_Models" / "check" / "parameters.json", json.dumps({"COMMON": {"threshold": 0.5, "cols": ["a", "b"]}})
    )
    write(root / "containers" / "python3" / "Dockerfile", "FROM python:3.11-slim\n")
    return root


@pytest.fixture
def project_root(tmp_path: Path) -> Path:
    return build_project(tmp_path / "proj")


@pytest.fixture
def load() -> Callable[..., Project]:
    def _load(root: Path, env: str = "DEV") -> Project:
        project = load_project(root, env)
        # noimage.yml has no buckets: valid in LOCAL only (it tests the LOCAL default bucket).
        errors = [e for e in project.errors if Path(e.file).name != "noimage.yml"]
        assert not errors, "\n".join(map(str, errors))
        return project

    return _load
