"""The model-config schema: every key of the old generator's format, normalised.

Pure pydantic; nothing here knows of Dagster or AWS. Loose values ("10", "60 * 5",
"timedelta(hours=1)", "success,failed", "None") are parsed by `values.py`.
"""

from __future__ import annotations

import math
import re
from datetime import date, timedelta
from enum import Enum
from graphlib import TopologicalSorter
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ml_pipelines.config import values

ENVIRONMENTS = ("LOCAL", "DEV", "BETA", "PROD")
CLOUD_ENVIRONMENTS = ("DEV", "BETA", "PROD")
KERNELS = (
    "python3",
    "python2",
    "tensorflow2_p36",
    "tensorflow_p36",
    "tensorflow_p27",
    "mxnet_py36",
    "mxnet_py27",
    "pytorch_p36",
)
# Glue worker types and the most workers each allows (None: no documented cap here).
GLUE_WORKER_LIMITS: dict[str, int | None] = {
    "Standard": None,
    "G.025X": None,
    "G.1X": 299,
    "G.2X": 149,
    "G.4X": None,
    "G.8X": None,
    "Z.2X": None,
}
SCHEDULE_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually")


def _optional(v: Any) -> Any:
    return values.none_if_blank(v)


def _empty_if_none(v: Any) -> Any:
    """A key written with nothing after it (`templates_dict:`) means an empty mapping."""
    return {} if v is None else v


def _lower(v: Any) -> Any:
    return v.strip().lower() if isinstance(v, str) else v


def _lower_or_default(default: str) -> Any:
    return lambda v: _lower(_optional(v)) or default


def _list_of_names(v: Any) -> Any:
    """One name written as a string is a list of one."""
    if isinstance(v, str):
        return [v] if v.strip() else []
    return v


def _states(v: Any) -> Any:
    states = [s.lower() for s in values.parse_comma_list(v)]
    return states or ["success"]


def _in_range(parse: Any) -> Any:
    """`parse`, with overflowing or non-finite results reported as validation errors."""

    def parse_in_range(v: Any) -> Any:
        try:
            result = parse(v)
        except (OverflowError, ArithmeticError):
            raise ValueError(f"{v!r} is out of range") from None
        if isinstance(result, float) and not math.isfinite(result):
            raise ValueError(f"{v!r} is out of range")
        return result

    return parse_in_range


Int = Annotated[int, BeforeValidator(_in_range(values.parse_int))]
Number = Annotated[float, BeforeValidator(_in_range(values.parse_number))]
Seconds = Annotated[float, BeforeValidator(_in_range(values.parse_seconds))]
Delta = Annotated[timedelta, BeforeValidator(_in_range(values.parse_timedelta))]
Day = Annotated[date, BeforeValidator(values.parse_date)]
CommaList = Annotated[list[str], BeforeValidator(values.parse_comma_list)]
OptionalStr = Annotated[str | None, BeforeValidator(_optional)]
Text = Annotated[str, BeforeValidator(lambda v: "" if v is None else str(v) if isinstance(v, (int, float)) else v)]

# An e-mail address as checked here (no lookup): local@domain.tld without spaces; the local
# part letters, digits and . _ % + - (no leading, trailing or double dot), the domain
# dot-separated labels of letters, digits and inner '-', the last of 2+ letters.
EMAIL = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}"
)
ADDRESS_SEPARATORS = re.compile(r"[,;]")
# A Slack channel name or id, with or without '#'.
SLACK_CHANNEL = re.compile(r"#?[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def _bad_addresses(parts: list[str]) -> str | None:
    """A message naming the parts that are not e-mail addresses, or None."""
    bad = [p for p in parts if not EMAIL.fullmatch(p)]
    if not bad:
        return None
    if len(bad) == 1:
        message = f"{bad[0]!r} is not an e-mail address"
    else:
        message = ", ".join(repr(b) for b in bad[:-1]) + f" and {bad[-1]!r} are not e-mail addresses"
    if any(len(b.split()) > 1 and all(EMAIL.fullmatch(w) for w in b.split()) for b in bad):
        return message + "; separate addresses with ',' or ';'"
    return message + " (name@domain.tld)"


def _addresses(v: Any) -> list[str]:
    """One address, a list, or text separated by ',' or ';' (also in list items) -> the
    addresses, blanks dropped; any part that is not an address is an error naming it."""
    v = _optional(v)
    if v is None:
        return []
    items = v if isinstance(v, list) else [v]
    parts: list[str] = []
    for item in items:
        item = _optional(item)
        if item is None:
            continue
        if isinstance(item, (dict, list, bool)):
            raise ValueError("expected e-mail addresses: one, a list, or text separated by ',' or ';'")
        parts.extend(p.strip() for p in ADDRESS_SEPARATORS.split(str(item)) if p.strip())
    problem = _bad_addresses(parts)
    if problem:
        raise ValueError(problem)
    return parts


def _owner(v: str) -> str:
    """A team name, or e-mail addresses: every ','/';' part with an '@' must be an address."""
    parts = [p.strip() for p in ADDRESS_SEPARATORS.split(v) if "@" in p]
    problem = _bad_addresses(parts)
    if problem:
        raise ValueError(f"{problem}; an owner is an e-mail address or a team name without '@'")
    return v


def _slack_channel(v: Any) -> Any:
    v = _optional(v)
    if isinstance(v, str):
        v = v.strip()
        if not SLACK_CHANNEL.fullmatch(v):
            raise ValueError(
                f"{v!r} is not a Slack channel name (letters, digits, '-', '_', '.', with or without '#'); "
                "leave it empty for no Slack alerts"
            )
    return v


Emails = Annotated[list[str], BeforeValidator(_addresses)]


class StepKind(str, Enum):
    CONTAINER_IMAGE = "container_image"
    NOTEBOOK = "notebook"
    SQL = "sql"
    GLUE = "glue"
    PYTHON_SCRIPT = "python_script"
    EXTERNAL_WAIT = "external_wait"


class Model(BaseModel):
    """Unknown keys are errors (with a did-you-mean from the loader). A key with an alias
    is accepted by its alias only: `NON_PROD` is a typo of `NON-PROD`, not a spelling of it."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class BucketConfig(Model):
    model_bucket: OptionalStr = Field(
        None, description="S3 bucket for the step's files; required in DEV/BETA/PROD for notebook and Glue steps."
    )


BucketsByEnv = Annotated[
    dict[Literal["LOCAL", "DEV", "BETA", "PROD"], Annotated[BucketConfig, BeforeValidator(_empty_if_none)]],
    BeforeValidator(_empty_if_none),
]
Templates = Annotated[dict[str, Text], BeforeValidator(_empty_if_none)]


class StepBase(Model):
    """A step of a pipeline. Each kind's config facts are class attributes of its model:
    `name_prefix` (how the old generator recognised it by name; None: by `type`), `label`
    (in messages), `pipeline_keys` (pipeline keys that choose its files or target, part of
    its code version), `runs_in_image` (it executes in the pipeline's container image)."""

    kind: ClassVar[StepKind]
    name_prefix: ClassVar[str | None]
    label: ClassVar[str]
    pipeline_keys: ClassVar[tuple[str, ...]] = ()
    runs_in_image: ClassVar[bool] = False

    name: str = Field(min_length=1, description="Step name, unique in the pipeline; the asset key's last part.")
    type: OptionalStr = Field(
        None, description="Airflow operator name (BashOperator, PythonOperator, ExternalTaskSensor); informational."
    )
    upstream_task_name: CommaList = Field(
        default_factory=list, description="Names of steps in the same pipeline this step runs after."
    )
    templates_dict: Templates = Field(
        default_factory=dict, description="Jinja templates rendered per run and passed to the step as parameters."
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_word(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_\-]*", v):
            raise ValueError("a step name may hold only letters, digits, '_' and '-'")
        return v


class ContainerImageStep(StepBase):
    """`ecr_container_creation`: the runtime (image) the pipeline's notebooks execute in."""

    kind: ClassVar[StepKind] = StepKind.CONTAINER_IMAGE
    name_prefix: ClassVar[str | None] = "ecr_container_creation"
    label: ClassVar[str] = "container image"
    pipeline_keys: ClassVar[tuple[str, ...]] = ("model_name",)
    kernel: Annotated[Literal[KERNELS], BeforeValidator(_lower_or_default("python3"))] = Field(  # type: ignore[valid-type]
        "python3", description="Base kernel image."
    )
    requirements_file_name: OptionalStr = Field(
        None, description="Requirements file in the model folder; default requirements.txt."
    )


class NotebookDetails(Model):
    instance_type: str = Field("ml.m5.large", description="SageMaker Processing instance type.")
    instance_count: Int = Field(1, ge=1, description="Number of instances.")
    volume_size_InGB: Int = Field(40, ge=1, description="Attached volume size in GB.")


class NotebookStep(StepBase):
    """`sagemaker_notebook_job_processing_script*`: a notebook executed with papermill."""

    kind: ClassVar[StepKind] = StepKind.NOTEBOOK
    name_prefix: ClassVar[str | None] = "sagemaker_notebook_job_processing_script"
    label: ClassVar[str] = "notebook"
    pipeline_keys: ClassVar[tuple[str, ...]] = ("model_name",)
    runs_in_image: ClassVar[bool] = True
    notebook_name: Text = Field("", description="Notebook in the model folder, with or without .ipynb; empty = none.")
    param_file_name: OptionalStr = Field(
        None, description="Parameter file, with or without .json; default parameters.json."
    )
    Details: Annotated[NotebookDetails, BeforeValidator(_empty_if_none)] = Field(default_factory=NotebookDetails)
    BucketIOConfig: BucketsByEnv = Field(default_factory=dict, description="Model bucket per environment.")


class SqlStep(StepBase):
    """`write_to_snowflake*`: SQL files from the model's pipeline/ folder, run in order."""

    kind: ClassVar[StepKind] = StepKind.SQL
    name_prefix: ClassVar[str | None] = "write_to_snowflake"
    label: ClassVar[str] = "SQL"
    pipeline_keys: ClassVar[tuple[str, ...]] = ("schema", "model_name", "glue_model_name")
    model_type: Annotated[Literal["sagemaker", "glue"], BeforeValidator(_lower_or_default("sagemaker"))] = Field(
        "sagemaker", description="Which model folder's pipeline/ holds the SQL files."
    )
    sql_file_names: Annotated[list[str], BeforeValidator(_list_of_names), Field(min_length=1)] = Field(
        description="SQL files, run in order."
    )


class GlueDetails(Model):
    script_name: str = Field(min_length=1, description="Glue script name without .py.")
    script_loc: Annotated[Literal["model", "common"], BeforeValidator(_lower)] = Field(
        description="model: the Glue model folder; common: Glue_Models/common."
    )
    param_file_name: OptionalStr = None
    requirements_file_name: OptionalStr = None
    worker_type: str = Field("G.1X", description="Glue worker type.")
    number_of_workers: Int = Field(2, ge=1, description="Workers allocated when the job runs.")

    @field_validator("worker_type")
    @classmethod
    def _known_worker(cls, v: str) -> str:
        by_lower = {k.lower(): k for k in GLUE_WORKER_LIMITS}
        if v.strip().lower() not in by_lower:
            raise ValueError(f"unknown worker type {v!r}; allowed: {', '.join(GLUE_WORKER_LIMITS)}")
        return by_lower[v.strip().lower()]

    @field_validator("number_of_workers")
    @classmethod
    def _worker_limit(cls, v: int, info: ValidationInfo) -> int:
        # worker_type is declared first, so it is validated (and normalised) by now.
        worker_type = info.data.get("worker_type")
        limit = GLUE_WORKER_LIMITS.get(worker_type) if worker_type else None
        if limit is not None and v > limit:
            raise ValueError(f"{v} workers exceeds {limit}, the maximum for worker type {worker_type}")
        return v


class GlueStep(StepBase):
    """`glue_job_processing_script*`: a PySpark script run as a Glue job."""

    kind: ClassVar[StepKind] = StepKind.GLUE
    name_prefix: ClassVar[str | None] = "glue_job_processing_script"
    label: ClassVar[str] = "Glue"
    pipeline_keys: ClassVar[tuple[str, ...]] = ("glue_model_name",)
    Details: GlueDetails = Field(description="script_name, script_loc (required); workers, files.")
    BucketIOConfig: BucketsByEnv = Field(default_factory=dict, description="Model bucket per environment.")


class ExternalDagDetails(Model):
    external_dag_id: str = Field(min_length=1, description="Pipeline id to wait for.")
    external_task_id: OptionalStr = Field(None, description="Step to wait for; None = the whole pipeline.")
    allowed_states: Annotated[list[Literal["success", "running", "failed"]], BeforeValidator(_states)] = Field(
        default_factory=lambda: ["success"], description="States that end the wait; blank = success."
    )
    poke_interval: Seconds = Field(60.0, gt=0, description="Seconds between checks.")
    timeout: Annotated[Seconds, BeforeValidator(lambda v: 60 if _optional(v) is None else v)] = Field(
        60.0, gt=0, description="Seconds before the wait fails."
    )
    mode: Annotated[Literal["poke", "reschedule"], BeforeValidator(_lower_or_default("poke"))] = "poke"
    execution_delta: Annotated[Delta, BeforeValidator(lambda v: 0 if _optional(v) is None else v)] = Field(
        default_factory=timedelta, description="How far back the awaited logical date lies."
    )
    # Not in the old format: where the awaited pipeline runs (ml_pipelines/waits).
    source: Annotated[Literal["this", "dagster", "airflow"] | None, BeforeValidator(lambda v: _lower(_optional(v)))] = (
        Field(
            None,
            description=(
                "this: a pipeline of this code location; dagster: an asset of another code location of the same "
                "Dagster instance; airflow: a DAG of the Airflow at ML_PIPELINES_AIRFLOW_URL. Default: this when "
                "external_dag_id is one of this project's pipelines, else airflow when ML_PIPELINES_AIRFLOW_URL is set."
            ),
        )
    )
    asset_keys: Annotated[list[str], BeforeValidator(_list_of_names)] = Field(
        default_factory=list,
        description="source dagster: the awaited assets' keys ('prefix/name'); default external_dag_id/external_task_id.",
    )

    @field_validator("asset_keys")
    @classmethod
    def _asset_keys(cls, v: list[str], info: ValidationInfo) -> list[str]:
        keys = [k.strip().strip("/") for k in v if k and k.strip().strip("/")]
        if keys and info.data.get("source") != "dagster":
            raise ValueError("asset_keys is for source: dagster (the awaited assets of another code location)")
        return keys

    @model_validator(mode="after")
    def _whole_pipeline_elsewhere(self) -> ExternalDagDetails:
        if self.source == "dagster" and not self.external_task_id and not self.asset_keys:
            raise ValueError(
                "source: dagster with external_task_id None needs asset_keys: the awaited pipeline's last steps "
                "(another code location's steps are not known here)"
            )
        return self


class ExternalWaitStep(StepBase):
    """`type: ExternalTaskSensor`: waits on another pipeline (or one of its steps)."""

    kind: ClassVar[StepKind] = StepKind.EXTERNAL_WAIT
    name_prefix: ClassVar[str | None] = None
    label: ClassVar[str] = "external wait"
    external_dag_details: ExternalDagDetails


class PythonScriptStep(StepBase):
    """`python_script*`: a plain Python script run with --key value arguments."""

    kind: ClassVar[StepKind] = StepKind.PYTHON_SCRIPT
    name_prefix: ClassVar[str | None] = "python_script"
    label: ClassVar[str] = "Python script"
    pipeline_keys: ClassVar[tuple[str, ...]] = ("model_name", "glue_model_name")
    model_type: Annotated[Literal["sagemaker", "glue"], BeforeValidator(_lower_or_default("sagemaker"))] = "sagemaker"
    script_loc: Annotated[Literal["model", "common"], BeforeValidator(_lower_or_default("model"))] = Field(
        "model", description="model: <model folder>/python_scripts/; common: Py_Models/."
    )
    script_name: str = Field(min_length=1, description="Script name, with or without .py.")
    param_file_name: OptionalStr = None
    requirements_file_name: OptionalStr = None


# Every step kind's config model; adding a kind adds its model here (and to steps/registry.py).
STEP_MODELS: tuple[type[StepBase], ...] = (
    ContainerImageStep,
    NotebookStep,
    SqlStep,
    GlueStep,
    PythonScriptStep,
    ExternalWaitStep,
)
STEP_MODEL_BY_KIND: dict[StepKind, type[StepBase]] = {m.kind: m for m in STEP_MODELS}
# name prefix -> kind; the old generator recognised steps by these names.
NAME_PREFIXES: tuple[tuple[str, StepKind], ...] = tuple((m.name_prefix, m.kind) for m in STEP_MODELS if m.name_prefix)


def step_kind_of(raw: Any) -> str | None:
    """The step kind of a raw task mapping (or a model), or None when it cannot be told."""
    if isinstance(raw, StepBase):
        return raw.kind.value
    if not isinstance(raw, dict):
        return None
    if str(raw.get("type") or "").strip() == "ExternalTaskSensor":
        return StepKind.EXTERNAL_WAIT.value
    name = str(raw.get("name") or "")
    for prefix, kind in NAME_PREFIXES:
        if name.startswith(prefix):
            return kind.value
    return None


Step = Annotated[
    Union[tuple(Annotated[m, Tag(m.kind.value)] for m in STEP_MODELS)],  # type: ignore[misc]
    Discriminator(
        step_kind_of,
        custom_error_type="unknown_step_kind",
        custom_error_message=(
            "cannot tell the step kind: name must start with one of "
            + ", ".join(p for p, _ in NAME_PREFIXES)
            + ", or set type: ExternalTaskSensor"
        ),
    ),
]


# A sensible range for a first partition: dates far out break Dagster's partition count
# (0001-01-01 overflows) and the load's sample window (9999-12-31 overflows).
EARLIEST_START_DATE, LATEST_START_DATE = date(1970, 1, 1), date(2100, 12, 31)


def _start_in_range(v: date | None) -> date | None:
    if v is not None and not EARLIEST_START_DATE <= v <= LATEST_START_DATE:
        side = "before" if v < EARLIEST_START_DATE else "after"
        bound = EARLIEST_START_DATE if v < EARLIEST_START_DATE else LATEST_START_DATE
        raise ValueError(
            f"start_date {v.isoformat()} is {side} {bound.isoformat()}: the first partition must fall from "
            f"{EARLIEST_START_DATE.isoformat()} to {LATEST_START_DATE.isoformat()} (dates far outside that range "
            "break Dagster's time partitions); write a date like 2020-08-04, the first date the pipeline runs for"
        )
    return v


class DefaultArgs(Model):
    owner: Annotated[Text, AfterValidator(_owner)] = Field(
        "", description="Asset owner: an e-mail address (or a ',' list of them), or a team name."
    )
    depends_on_past: bool = Field(False, description="Each partition waits for its own previous partition.")
    start_date: Annotated[Day | None, AfterValidator(_start_in_range)] = Field(
        None, description="First partition of the pipeline."
    )
    email_prod: Emails = Field(default_factory=list, description="Alert recipients in PROD.")
    email_nonprod: Emails = Field(default_factory=list, description="Alert recipients in LOCAL, DEV and BETA.")
    email_on_failure: bool = False
    email_on_retry: bool = False
    retries: Int = Field(0, ge=0, description="Retries of every step.")
    retry_delay: Number = Field(5.0, ge=0, description="Minutes between retries.")
    domain: Text = Field("sagemaker", description="Fixed value of the old format; ignored.")


SlackChannel = Annotated[str | None, BeforeValidator(_slack_channel)]


class SlackChannels(Model):
    """Exactly the old format's two keys; empty or missing: no Slack alerts there."""

    NON_PROD: SlackChannel = Field(None, alias="NON-PROD", description="Channel for LOCAL, DEV and BETA alerts.")
    PROD: SlackChannel = Field(None, description="Channel for PROD alerts.")


def _schedule(v: Any) -> Any:
    v = _optional(v)
    if v is None:
        return None
    if not isinstance(v, str):
        raise ValueError("schedule_interval must be a cron expression, a preset like @daily, or null")
    v = " ".join(v.split())
    if v.startswith("@"):
        if v not in SCHEDULE_PRESETS:
            raise ValueError(f"unknown preset {v!r}; allowed: {', '.join(SCHEDULE_PRESETS)}")
        return v
    from ml_pipelines.config.cron import check_cron

    check_cron(v)
    return v


class PipelineConfig(Model):
    """One pipeline (`dags.<family>`)."""

    domain: Text = Field(min_length=1)
    sub_domain: Text = Field(min_length=1)
    action: Text = Field(min_length=1)
    default_args: Annotated[DefaultArgs, BeforeValidator(_empty_if_none)] = Field(default_factory=DefaultArgs)
    schedule_interval: Annotated[str | None, BeforeValidator(_schedule)] = Field(
        None, description="Cron or @preset; null = unscheduled and unpartitioned."
    )
    max_active_runs: Int | None = Field(None, ge=1, description="At most this many runs at once.")
    catchup: bool = Field(False, description="Also run missed partitions since start_date.")
    schema_: OptionalStr = Field(None, alias="schema", description="Snowflake schema for SQL steps.")
    model_name: OptionalStr = Field(None, description="Folder under Sagemaker_Models/.")
    glue_model_name: OptionalStr = Field(None, description="Folder under Glue_Models/.")
    slack_channel: SlackChannels | None = None
    tasks: Annotated[list[Step], BeforeValidator(lambda v: [] if v is None else v)] = Field(default_factory=list)

    @field_validator("domain", "sub_domain", "action")
    @classmethod
    def _id_part(cls, v: str) -> str:
        v = v.strip()
        if not re.fullmatch(r"[A-Za-z0-9_]+", v):
            raise ValueError(
                f"{v!r} may hold only letters, digits and '_' (it becomes part of the pipeline id and job name)"
            )
        return v

    @property
    def pipeline_id(self) -> str:
        return f"{self.domain}_{self.sub_domain}_{self.action}"

    def step(self, name: str) -> StepBase:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)

    def step_order(self) -> list[str]:
        """Step names in an order that runs each after its upstream steps."""
        graph = {t.name: set(t.upstream_task_name) for t in self.tasks}
        return list(TopologicalSorter(graph).static_order())
