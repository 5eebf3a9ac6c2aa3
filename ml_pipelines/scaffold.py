"""`ml-pipelines new-model NAME --kind notebook|glue|python`: a model folder and its config,
valid in every environment and runnable in LOCAL as written.

- notebook: `Sagemaker_Models/<NAME>/<NAME>.ipynb` (a `parameters` cell, writes a CSV into
  `output_dir`), `parameters.json`, `requirements.txt`; steps: the image, then the notebook.
- glue: `Glue_Models/<NAME>/<name>_job.py` (awsglue style, writes parquet for the day),
  `parameters.json`, `requirements.txt`; step: the Glue job.
- python: `Sagemaker_Models/<NAME>/python_scripts/<name>.py` (`--key value` arguments),
  `parameters.json`, `requirements.txt`; step: the script.

The config is `model_configs/<name>.yml`, pipeline id `ds_<NAME>_Daily`, daily at 06:00 UTC
from a week ago (its first partitions are the latest ones: easy to find in the UI). Nothing
is overwritten: an existing file or pipeline id stops the command before it writes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

KINDS = ("notebook", "glue", "python")
BUCKETS = {
    "DEV": "datascience-ml-pipelines-dev",
    "BETA": "datascience-ml-pipelines-beta",
    "PROD": "datascience-ml-pipelines",
}


class ScaffoldError(Exception):
    """The name or the project refuses the scaffold: one line, nothing written."""


@dataclass(frozen=True)
class Scaffold:
    pipeline_id: str
    files: list[Path]
    example_date: str


def _notebook(name: str) -> str:
    def cell(kind: str, source: str, tags: list[str] | None = None) -> dict:
        data: dict = {"cell_type": kind, "metadata": {"tags": tags} if tags else {}, "source": source}
        if kind == "code":
            data.update(execution_count=None, outputs=[])
        return data

    cells = [
        cell("markdown", f"# {name}\n\nWhat this model does, in a sentence or two (shown on the asset's page)."),
        cell(
            "code",
            "# Parameters: papermill injects the run's values in a cell after this one.\n"
            'dt = "2024-01-01"  # the run\'s date (templates_dict: dt)\n'
            'output_dir = "output"  # files written here are published to the step\'s output location\n'
            "scale = 1.0  # from parameters.json",
            tags=["parameters"],
        ),
        cell(
            "code",
            "import os\n\nimport pandas as pd\n\n"
            'result = pd.DataFrame({"dt": [dt], "value": [float(scale)]})\n'
            "os.makedirs(output_dir, exist_ok=True)\n"
            'path = os.path.join(output_dir, f"result_{dt}.csv")\n'
            "result.to_csv(path, index=False)\n"
            'print(f"wrote {len(result)} row(s) to {path}")',
        ),
    ]
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook, indent=1) + "\n"


GLUE_SCRIPT = '''\
"""{name}: a day's rows as parquet, in the usual AWS Glue style (runs on local PySpark in LOCAL).

Arguments (`--key value`): JOB_NAME (added by the runner), dt (templates_dict), data_bucket and
output_prefix (parameters.json). Writes s3://<data_bucket>/<output_prefix>/dt=<dt>/.
"""

import sys

from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "dt", "data_bucket", "output_prefix"])
dt = args["dt"]
target = f"s3://{{args['data_bucket']}}/{{args['output_prefix'].strip('/')}}/dt={{dt}}/"

sc = SparkContext.getOrCreate()
glue_context = GlueContext(sc)
logger = glue_context.get_logger()
job = Job(glue_context)
job.init(args["JOB_NAME"], args)

rows = glue_context.spark_session.createDataFrame([(dt, 1.0)], ["dt", "value"]).coalesce(1)
glue_context.write_dynamic_frame.from_options(
    frame=DynamicFrame.fromDF(rows, glue_context, "{snake}"),
    connection_type="s3",
    connection_options={{"path": target}},
    format="parquet",
)
logger.info(f"wrote {{rows.count()}} row(s) for {{dt}} to {{target}}")
job.commit()
'''

PYTHON_SCRIPT = '''\
"""{name}: one step of plain Python. Arguments come as `--key value`: templates_dict (dt) and
parameters.json (greeting, min_value). Exit code 0 succeeds; anything else fails the step.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="{name}")
    parser.add_argument("--dt", required=True)
    parser.add_argument("--greeting", default="hello")
    parser.add_argument("--min_value", type=float, default=0.0)
    args, _unknown = parser.parse_known_args(argv)
    print(f"{{args.greeting}} from {name} for {{args.dt}} (min_value {{args.min_value}})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


def _parameters(common: dict, per_env: dict[str, dict] | None = None) -> str:
    data = {env: (per_env or {}).get(env, {}) for env in ("DEV", "BETA", "PROD")}
    data["COMMON"] = common
    return json.dumps(data, indent=4) + "\n"


def _buckets(indent: str) -> str:
    lines = [f"{indent}BucketIOConfig:"]
    for env, bucket in BUCKETS.items():
        lines += [f"{indent}  {env}:", f'{indent}    model_bucket: "{bucket}"']
    return "\n".join(lines) + "\n"


def _config(name: str, kind: str, snake: str, start: date) -> str:
    header = f"""\
# {name}: scaffolded by `ml-pipelines new-model {name} --kind {kind}`; edit freely
# (every key: docs/config-reference.md). Pipeline id: ds_{name}_Daily.

dags:
  sagemaker:
    domain: "ds"
    sub_domain: "{name}"
    action: "Daily"
    default_args:
      owner: "ds-team@example.com"
      depends_on_past: False
      start_date: "{start.isoformat()}"
      email_nonprod: "ds-team@example.com"
      email_on_failure: False
      email_on_retry: False
      retries: 0
      retry_delay: 5
    schedule_interval: "0 6 * * *"
    max_active_runs: 1
    catchup: False
"""
    if kind == "notebook":
        return (
            header
            + f"""\
    model_name: "{name}"
    tasks:
      # the notebook's runtime: python3 plus Sagemaker_Models/{name}/requirements.txt
      - name: "ecr_container_creation"
        type: "BashOperator"
        kernel: "python3"
      # Sagemaker_Models/{name}/{name}.ipynb with parameters.json and templates_dict
      - name: "sagemaker_notebook_job_processing_script"
        type: "BashOperator"
        notebook_name: "{name}"
        Details:
          instance_type: "ml.m5.large"
          instance_count: 1
          volume_size_InGB: 30
        templates_dict:
          dt: "{{{{ ds }}}}"
{_buckets("        ")}        upstream_task_name: "ecr_container_creation"
"""
        )
    if kind == "glue":
        return (
            header
            + f"""\
    glue_model_name: "{name}"
    tasks:
      # Glue_Models/{name}/{snake}_job.py with parameters.json and templates_dict
      - name: "glue_job_processing_script"
        type: "BashOperator"
        Details:
          script_name: "{snake}_job"
          script_loc: "model"
          worker_type: "G.1X"
          number_of_workers: 2
        templates_dict:
          dt: "{{{{ ds }}}}"
{_buckets("        ")}"""
        )
    return (
        header
        + f"""\
    model_name: "{name}"
    tasks:
      # Sagemaker_Models/{name}/python_scripts/{snake}.py with parameters.json and templates_dict
      - name: "python_script_{snake}"
        type: "BashOperator"
        script_loc: "model"
        script_name: "{snake}"
        templates_dict:
          dt: "{{{{ ds }}}}"
"""
    )


def scaffold_model(project_dir: Path, name: str, kind: str, today: date | None = None) -> Scaffold:
    """Write the model folder and config of `name` into `project_dir`; refuse (writing
    nothing) when the name is not an identifier or a file or the pipeline id already exists."""
    if kind not in KINDS:
        raise ScaffoldError(f"--kind must be one of {', '.join(KINDS)}")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,59}", name):
        raise ScaffoldError(f"model name {name!r}: a letter, then letters, digits and _ (at most 60)")
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    snake = re.sub(r"_+", "_", snake)
    start = (today or date.today()) - timedelta(days=7)
    project_dir = project_dir.resolve()
    config = project_dir / "model_configs" / f"{snake}.yml"
    requirements = (
        "# Installed into the model's image (LOCAL: its Python environment); pandas is already there.\npandas\n"
    )
    files: dict[Path, str] = {config: _config(name, kind, snake, start)}
    if kind == "notebook":
        folder = project_dir / "Sagemaker_Models" / name
        files[folder / f"{name}.ipynb"] = _notebook(name)
        files[folder / "parameters.json"] = _parameters({"scale": 1.0})
        files[folder / "requirements.txt"] = requirements
    elif kind == "glue":
        folder = project_dir / "Glue_Models" / name
        files[folder / f"{snake}_job.py"] = GLUE_SCRIPT.format(name=name, snake=snake)
        files[folder / "parameters.json"] = _parameters(
            {"output_prefix": f"{snake}/daily"}, {env: {"data_bucket": b} for env, b in BUCKETS.items()}
        )
        files[folder / "requirements.txt"] = "# Extra Python modules for the Glue job (--additional-python-modules).\n"
    else:
        folder = project_dir / "Sagemaker_Models" / name
        files[folder / "python_scripts" / f"{snake}.py"] = PYTHON_SCRIPT.format(name=name)
        files[folder / "parameters.json"] = _parameters({"greeting": "hello", "min_value": 0})
        files[folder / "requirements.txt"] = requirements
    existing = [p for p in files if p.exists()]
    if existing:
        raise ScaffoldError(f"{existing[0].relative_to(project_dir)} already exists; pick another name")
    if folder.exists():
        raise ScaffoldError(f"{folder.relative_to(project_dir)} already exists; pick another name")
    pipeline_id = f"ds_{name}_Daily"
    taken = _pipeline_ids(project_dir)
    if pipeline_id in taken:
        raise ScaffoldError(f"pipeline {pipeline_id} already exists in {taken[pipeline_id]}; pick another name")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return Scaffold(pipeline_id=pipeline_id, files=list(files), example_date=start.isoformat())


def _pipeline_ids(project_dir: Path) -> dict[str, str]:
    """Pipeline ids of the project's valid configs (LOCAL) -> their file."""
    if not (project_dir / "model_configs").is_dir():
        return {}
    from ml_pipelines.config.loader import load_project

    project = load_project(project_dir, env="LOCAL")
    return {p.pipeline_id: project.paths.rel(p.source) for p in project.pipelines}
