"""What one step runs, fully resolved for an environment and a time window.

These plain dataclasses are the contract between the plan resolver (config -> plan),
the Dagster factory and the execution backends (LOCAL, AWS). They hold no Dagster or
AWS objects, so `ml-pipelines plan` can print exactly what a run would execute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TimeWindow:
    """The run's logical time window; `ds` is its start, as in Airflow 2."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class RunIdentity:
    """Who is running: shared by every step plan."""

    pipeline_id: str
    step_name: str
    env: str  # LOCAL, DEV, BETA, PROD
    window: TimeWindow | None  # None for an unpartitioned pipeline


@dataclass(frozen=True)
class ContainerImagePlan:
    """The kernel's runtime: a venv + Jupyter kernel in LOCAL, an ECR image on AWS."""

    run: RunIdentity
    kernel: str  # e.g. "python3"
    model_dir: Path
    requirements_file: Path | None  # None: no extra requirements
    dockerfile: Path | None  # containers/<kernel>/Dockerfile when present
    content_hash: str  # hash(kernel, requirements, Dockerfile): the image tag
    image_name: str  # stable name, e.g. "<pipeline_id>-<kernel>"


@dataclass(frozen=True)
class NotebookPlan:
    run: RunIdentity
    notebook: Path  # the source .ipynb in the model folder
    model_dir: Path
    lib_dir: Path | None
    parameter_file: Path | None
    image: ContainerImagePlan  # the runtime the notebook executes in
    parameters: dict[str, Any]  # COMMON + env section + rendered templates_dict + ENV
    input_uri: str  # s3://<bucket>/sagemaker-models-<env>/<model>/<notebook>/input/
    output_uri: str  # .../output/
    instance_type: str
    instance_count: int
    volume_size_gb: int


@dataclass(frozen=True)
class GluePlan:
    run: RunIdentity
    job_name: str  # passed as --JOB_NAME
    script: Path
    script_dir: Path  # where lib/, jars/, py files are looked up
    lib_dir: Path | None
    jars: tuple[Path, ...]
    py_files: tuple[Path, ...]
    requirements_file: Path | None
    arguments: dict[str, str]  # keys without "--"; the backend adds it
    worker_type: str
    number_of_workers: int
    base_uri: str  # s3://<bucket>/glue-models-<env>/<glue_model>/<script>/
    input_uri: str
    lib_uri: str
    jar_uri: str
    temp_uri: str
    # script_loc common only: input/common_lib/, input/common_jars/, input/pub_dependencies/,
    # input/common_py_files/ by name; empty for a model script.
    common_input_uris: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PythonScriptPlan:
    run: RunIdentity
    script: Path
    script_dir: Path  # lib/ and requirements are looked up here
    lib_dir: Path | None
    requirements_file: Path | None
    arguments: dict[str, str]  # keys without "--"


@dataclass(frozen=True)
class SqlStatementFile:
    name: str  # file name as in sql_file_names
    path: Path
    text: str  # rendered for the run


@dataclass(frozen=True)
class SqlPlan:
    run: RunIdentity
    schema: str | None  # the config's `schema`
    files: tuple[SqlStatementFile, ...]
    connection: dict[str, Any] = field(default_factory=dict)  # from CommonConf (account, warehouse...)


@dataclass(frozen=True)
class ExternalWaitPlan:
    run: RunIdentity
    external_pipeline_id: str
    external_step_name: str | None  # None: the whole pipeline
    allowed_states: tuple[str, ...]
    poke_interval_s: float
    timeout_s: float
    mode: str
    execution_delta_s: float  # logical-date offset back in time
