"""The step kinds: one declaration each, from which the factory and the environment work.

An entry names the kind's config model (which carries its name prefix, label and
pipeline keys, see `config.schema.StepBase`), the resource key and interface of its
backend, the call that runs a plan on that backend, its Dagster kinds and whether it is
time-partitioned. The config layer's file resolver (`config.paths.STEP_FILES`) and the
planner (`plan.resolve.PLANNERS`) are keyed by the same kind; `tests/test_step_kinds.py`
checks that every kind has all of them.

Adding a kind: its model in `config/schema.py` (+ `STEP_MODELS`), its files in
`config/paths.py`, its plan in `plan/`, an interface in `steps/__init__.py`, an entry here,
and a backend per environment bound in `environment.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from dagster import PipesClient

from ml_pipelines.alerts.notifier import Notifier
from ml_pipelines.config.schema import (
    ContainerImageStep,
    ExternalWaitStep,
    GlueStep,
    NotebookStep,
    PythonScriptStep,
    SqlStep,
    StepBase,
    StepKind,
)
from ml_pipelines.steps import (
    ContainerImageBackend,
    GlueBackend,
    NotebookBackend,
    PythonScriptBackend,
    SqlBackend,
    StepOutcome,
    Storage,
)

RunCall = Callable[[Any, Any, Any], StepOutcome]  # (backend, context, plan) -> outcome


def _run(backend: Any, context: Any, plan: Any) -> StepOutcome:
    return backend.run(context, plan)


def _build(backend: ContainerImageBackend, context: Any, plan: Any) -> StepOutcome:
    return backend.build(context, plan)


@dataclass(frozen=True)
class StepKindSpec:
    model: type[StepBase]
    dagster_kinds: frozenset[str]  # shown on the asset in the UI
    resource_key: str | None = None  # None: nothing runs (an external wait is recorded by sensors)
    interface: type | None = None
    run: RunCall | None = _run
    time_partitioned: bool = True  # False: one unpartitioned asset, not one per date

    @property
    def kind(self) -> StepKind:
        return self.model.kind

    @property
    def runnable(self) -> bool:
        """False for a kind nothing runs for (an external wait is recorded by sensors)."""
        return self.resource_key is not None


REGISTRY: dict[StepKind, StepKindSpec] = {
    spec.kind: spec
    for spec in (
        # an image depends on its kernel, requirements and Dockerfile, not on a date
        StepKindSpec(
            ContainerImageStep,
            frozenset({"docker", "python"}),
            "container_images",
            ContainerImageBackend,
            _build,
            time_partitioned=False,
        ),
        StepKindSpec(NotebookStep, frozenset({"sagemaker", "jupyter"}), "notebooks", NotebookBackend),
        StepKindSpec(GlueStep, frozenset({"spark", "aws"}), "glue", GlueBackend),
        StepKindSpec(PythonScriptStep, frozenset({"python"}), "python_scripts", PythonScriptBackend),
        StepKindSpec(SqlStep, frozenset({"snowflake", "sql"}), "warehouse", SqlBackend),
        StepKindSpec(ExternalWaitStep, frozenset({"sensor"}), run=None),
    )
}

# Resources every environment binds: a backend per runnable kind, and shared services.
SHARED_RESOURCES: dict[str, type] = {"storage": Storage, "pipes": PipesClient, "notifier": Notifier}
RESOURCE_KEYS: dict[str, type] = {
    **SHARED_RESOURCES,
    **{spec.resource_key: spec.interface for spec in REGISTRY.values() if spec.resource_key and spec.interface},
}


def spec_of(step: StepBase) -> StepKindSpec:
    return REGISTRY[step.kind]
