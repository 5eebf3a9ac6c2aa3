"""Config -> plan: what each step runs for one environment and time window.

`resolve_step` is what the Dagster assets call at run time and what `ml-pipelines plan`
prints (through the same `Resolver` and `PLANNERS`), so the printed plan is exactly what
executes.

Rules (docs: config reference):

- parameters = `resolve_parameters(parameter file, env)` (COMMON + env section; LOCAL
  falls back to DEV with s3:// values mapped under the storage root), then the step's
  `templates_dict` rendered for the run on top. Notebooks also get `ENV` (the backend adds
  `output_dir`). Glue and Python scripts get the same mapping as `arguments`, each value as
  text (`str()`, JSON for mappings and lists); Glue's job name is `<pipeline_id>-<step>`.
- SQL files are rendered with the template context, the rendered templates_dict values at
  top level and `params` (the step's parameters); connection = CommonConf, schema = the
  config's `schema`.
- A notebook runs in the image of the container-image step among its direct upstream
  steps (else the pipeline's first one); with none, in the default image: see `images.py`.
- A notebook step with an empty `notebook_name` has nothing to run: `plan_step` raises
  PlanError for it and `is_noop_step` tells callers to skip it.
- Storage URIs: see `storage_layout.py`.

Time windows: see `windows.py`.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ml_pipelines.config.parameters import resolve_parameters
from ml_pipelines.config.schema import (
    GlueStep,
    NotebookStep,
    SqlStep,
    StepBase,
    StepKind,
)
from ml_pipelines.config.templates import render, render_templates_dict, template_context
from ml_pipelines.config.text import read_text
from ml_pipelines.config.variables import Variables
from ml_pipelines.plan import storage_layout
from ml_pipelines.plan.images import image_files
from ml_pipelines.plan.model import (
    ContainerImagePlan,
    ExternalWaitPlan,
    GluePlan,
    NotebookPlan,
    PythonScriptPlan,
    RunIdentity,
    SqlPlan,
    SqlStatementFile,
    TimeWindow,
)
from ml_pipelines.plan.storage_layout import PlanError
from ml_pipelines.plan.versions import image_version

if TYPE_CHECKING:
    from ml_pipelines.config.loader import LoadedPipeline
    from ml_pipelines.config.paths import ProjectPaths, StepFiles

Plan = ContainerImagePlan | NotebookPlan | GluePlan | PythonScriptPlan | SqlPlan | ExternalWaitPlan


# ---------------------------------------------------------------- helpers


def _files(pipeline: LoadedPipeline, step_name: str) -> StepFiles:
    files = pipeline.files.get(step_name)
    if files is None:
        raise PlanError(f"step {step_name} of {pipeline.config.pipeline_id}: its files were not resolved")
    return files


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return str(value)


def step_arguments(parameters: Mapping[str, Any]) -> dict[str, str]:
    """Parameters as script arguments: keys as is (the backend adds `--`), values as text."""
    return {str(k): _stringify(v) for k, v in parameters.items()}


def _run(pipeline: LoadedPipeline, step_name: str, env: str, window: TimeWindow | None) -> RunIdentity:
    return RunIdentity(pipeline_id=pipeline.config.pipeline_id, step_name=step_name, env=env, window=window)


class Resolver:
    """Shared work for one (pipeline, step, env, window): context, parameters, templates.

    `storage_root`: LOCAL's mirror of S3 (s3:// parameter values map under it); None
    where steps use real S3 (DEV, BETA, PROD). `now` sets "today" for an unpartitioned run.
    """

    def __init__(
        self,
        pipeline: LoadedPipeline,
        step: StepBase,
        env: str,
        window: TimeWindow | None,
        *,
        paths: ProjectPaths,
        variables: Variables,
        storage_root: Path | None,
        now: datetime | None = None,
    ) -> None:
        self.pipeline, self.step, self.env, self.window = pipeline, step, env.upper(), window
        self.paths, self.variables, self.now = paths, variables, now
        if self.env == "LOCAL" and storage_root is None:
            raise PlanError(
                f"step {step.name} of {pipeline.config.pipeline_id}: LOCAL needs a storage root "
                "(its mirror of S3; see environment.Settings.storage_root)"
            )
        self.storage_root = Path(storage_root) if storage_root is not None else None
        self.files: StepFiles | None = pipeline.files.get(step.name)

    @property
    def run(self) -> RunIdentity:
        return _run(self.pipeline, self.step.name, self.env, self.window)

    def context(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return template_context(self.window, self.env, self.variables, extra, now=self.now)

    @cached_property
    def templates(self) -> dict[str, str]:
        return render_templates_dict(self.step.templates_dict, self.context(), step=self.step.name)

    @cached_property
    def file_parameters(self) -> dict[str, Any]:
        parameter_file = getattr(self.files, "parameter_file", None) if self.files is not None else None
        return resolve_parameters(parameter_file, self.env, self.storage_root)

    @property
    def parameters(self) -> dict[str, Any]:
        return {**self.file_parameters, **self.templates}

    def bucket(self, bucket_config: Mapping[str, Any]) -> str:
        where = f"step {self.step.name} of {self.pipeline.config.pipeline_id}"
        return storage_layout.model_bucket(bucket_config, self.env, where=where)


# ---------------------------------------------------------------- images


def image_plan(
    pipeline: LoadedPipeline,
    env: str,
    paths: ProjectPaths,
    *,
    step_name: str | None = None,
    window: TimeWindow | None = None,
) -> ContainerImagePlan:
    """The runtime of the pipeline's notebooks: the image of the container-image step
    named `step_name`, or the one the step `step_name` runs in, or the pipeline's first
    one; with none, the default image (see `images.py`)."""
    image = image_files(pipeline, paths, step_name)
    return ContainerImagePlan(
        run=_run(pipeline, image.step_name, env, window),
        kernel=image.kernel,
        model_dir=image.model_dir,
        requirements_file=image.requirements_file,
        dockerfile=image.dockerfile,
        content_hash=image_version(image.kernel, image.requirements_file, image.dockerfile),
        image_name=f"{pipeline.config.pipeline_id}-{image.kernel}",
    )


# ---------------------------------------------------------------- one planner per step kind


def plan_container_image(r: Resolver) -> ContainerImagePlan:
    return image_plan(r.pipeline, r.env, r.paths, step_name=r.step.name, window=r.window)


def plan_notebook(r: Resolver) -> NotebookPlan:
    step: NotebookStep = r.step  # type: ignore[assignment]
    files = _files(r.pipeline, step.name)
    if files.main is None:
        raise PlanError(f"step {step.name} of {r.pipeline.config.pipeline_id}: notebook_name is empty; nothing to run")
    model_name = r.pipeline.config.model_name
    if not model_name:
        raise PlanError(f"step {step.name} of {r.pipeline.config.pipeline_id}: the pipeline has no model_name")
    uris = storage_layout.notebook_uris(r.bucket(step.BucketIOConfig), r.env, model_name, Path(files.main).stem)
    return NotebookPlan(
        run=r.run,
        notebook=Path(files.main),
        model_dir=Path(files.model_dir),
        lib_dir=files.lib_dir,
        parameter_file=files.parameter_file,
        image=image_plan(r.pipeline, r.env, r.paths, step_name=step.name, window=r.window),
        parameters={**r.parameters, "ENV": r.env},
        input_uri=uris["input"],
        output_uri=uris["output"],
        instance_type=step.Details.instance_type,
        instance_count=step.Details.instance_count,
        volume_size_gb=step.Details.volume_size_InGB,
    )


def plan_glue(r: Resolver) -> GluePlan:
    step: GlueStep = r.step  # type: ignore[assignment]
    files = _files(r.pipeline, step.name)
    details = step.Details
    common = details.script_loc == "common"
    uris = storage_layout.glue_uris(
        r.bucket(step.BucketIOConfig), r.env, r.pipeline.config.glue_model_name, details.script_name, common=common
    )
    return GluePlan(
        run=r.run,
        job_name=f"{r.pipeline.config.pipeline_id}-{step.name}",
        script=Path(files.main),
        script_dir=Path(files.model_dir),
        lib_dir=files.lib_dir,
        jars=tuple(files.jars or ()),
        py_files=tuple(files.py_files or ()),
        requirements_file=files.requirements_file,
        arguments=step_arguments(r.parameters),
        worker_type=details.worker_type,
        number_of_workers=details.number_of_workers,
        base_uri=uris["base"],
        input_uri=uris["input"],
        lib_uri=uris["lib"],
        jar_uri=uris["jar"],
        temp_uri=uris["temp"],
        common_input_uris={k: uris[k] for k in storage_layout.GLUE_COMMON_INPUTS if k in uris},
    )


def plan_python_script(r: Resolver) -> PythonScriptPlan:
    files = _files(r.pipeline, r.step.name)
    return PythonScriptPlan(
        run=r.run,
        script=Path(files.main),
        script_dir=Path(files.model_dir),
        lib_dir=files.lib_dir,
        requirements_file=files.requirements_file,
        arguments=step_arguments(r.parameters),
    )


def plan_sql(r: Resolver) -> SqlPlan:
    step: SqlStep = r.step  # type: ignore[assignment]
    files = _files(r.pipeline, step.name)
    parameters = r.parameters
    context = r.context({**r.templates, "params": parameters})
    sql_files = list(files.sql_files or ())
    if len(sql_files) != len(step.sql_file_names):
        raise PlanError(
            f"step {step.name} of {r.pipeline.config.pipeline_id}: {len(step.sql_file_names)} sql_file_names "
            f"but {len(sql_files)} files found"
        )
    rendered = []
    for name, path in zip(step.sql_file_names, sql_files, strict=True):
        path = Path(path)
        try:
            text = read_text(path, what="SQL file")
        except (OSError, ValueError) as exc:
            raise PlanError(f"step {step.name} of {r.pipeline.config.pipeline_id}: cannot read {path}: {exc}") from None
        rendered.append(
            SqlStatementFile(
                name=name,
                path=path,
                text=render(text, context, where=f"step {step.name}, {name}", step=step.name, key=name),
            )
        )
    return SqlPlan(
        run=r.run, schema=r.pipeline.config.schema_, files=tuple(rendered), connection=dict(r.pipeline.common or {})
    )


def plan_external_wait(r: Resolver) -> ExternalWaitPlan:
    details = r.step.external_dag_details  # type: ignore[attr-defined]
    return ExternalWaitPlan(
        run=r.run,
        external_pipeline_id=details.external_dag_id,
        external_step_name=details.external_task_id,
        allowed_states=tuple(details.allowed_states),
        poke_interval_s=float(details.poke_interval),
        timeout_s=float(details.timeout),
        mode=details.mode,
        execution_delta_s=details.execution_delta.total_seconds(),
    )


# One planner per step kind (adding a kind = adding one entry).
PLANNERS: dict[StepKind, Callable[[Resolver], Plan]] = {
    StepKind.CONTAINER_IMAGE: plan_container_image,
    StepKind.NOTEBOOK: plan_notebook,
    StepKind.GLUE: plan_glue,
    StepKind.PYTHON_SCRIPT: plan_python_script,
    StepKind.SQL: plan_sql,
    StepKind.EXTERNAL_WAIT: plan_external_wait,
}


def is_noop_step(pipeline: LoadedPipeline, step_name: str) -> bool:
    """True for a step with nothing to run: a notebook step whose notebook_name is empty
    (the old generator's way to keep only Glue/SQL steps). Its asset succeeds at once."""
    step = pipeline.config.step(step_name)
    return isinstance(step, NotebookStep) and not step.notebook_name.strip()


def resolve_step(
    pipeline: LoadedPipeline,
    step_name: str,
    env: str,
    window: TimeWindow | None,
    *,
    paths: ProjectPaths,
    variables: Variables,
    storage_root: Path | None,
    now: datetime | None = None,
) -> tuple[Plan, Resolver]:
    """The plan of one step for (env, window) and the Resolver that made it (its resolved
    parameters and templates); `storage_root` and `now` as in `Resolver`.

    Raises PlanError, ParameterFileError or TemplateRenderError (all ValueError) with a
    message naming the step."""
    step = pipeline.config.step(step_name)
    resolver = Resolver(
        pipeline, step, env, window, paths=paths, variables=variables, storage_root=storage_root, now=now
    )
    return PLANNERS[step.kind](resolver), resolver


def plan_step(*args: Any, **kwargs: Any) -> Plan:
    """The plan of one step: `resolve_step` (same arguments) without its Resolver."""
    return resolve_step(*args, **kwargs)[0]
