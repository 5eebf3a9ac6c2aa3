"""One resource interface per step kind.

The factory calls these through `registry.py`; LOCAL and AWS backends implement them;
`environment.py` is the one place that picks the implementation. Backends receive the Dagster execution context
(for logging and Pipes) and a fully resolved plan from `ml_pipelines.plan.model`, and
return a `StepOutcome` whose metadata the factory attaches to the materialization.
A backend signals failure by raising `StepFailed` (or any exception) with a message a
data scientist can act on.

Retries (the pipeline's `retries`, a RetryPolicy on every step's op) are for failures that
another attempt might not hit: a failing notebook cell, a script's non-zero exit, a failed
SQL statement, a failed remote job, an env build (pip) that fails. A failure that retrying
cannot fix is raised as `StepPreconditionFailed`: a missing input file, a kernel LOCAL cannot
run, a requirements file that does not exist, an awsglue call LOCAL Glue does not support.
The factory turns it, a plan error (templates, parameter files, variables: ValueError) and a
depends_on_past hold into `Failure(allow_retries=False)`: the step fails at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from dagster import ConfigurableResource

from ml_pipelines.plan.model import (
    ContainerImagePlan,
    GluePlan,
    NotebookPlan,
    PythonScriptPlan,
    SqlPlan,
)


class StepFailed(Exception):
    """A step ran and failed; the message is what the user reads in the Dagster log. Retried."""


class StepPreconditionFailed(StepFailed):
    """The step cannot succeed until its configuration or files change: never retried."""


@dataclass
class StepOutcome:
    """What a step produced: metadata for the materialization (plain values or MetadataValue)."""

    metadata: dict[str, Any] = field(default_factory=dict)


class Storage(ConfigurableResource, ABC):
    """Object storage addressed by s3:// URIs (a local mirror in LOCAL, S3 on AWS)."""

    @abstractmethod
    def put_file(self, local_path: str, uri: str) -> str:
        """Copy a local file to `uri`; return the URI written."""

    @abstractmethod
    def put_tree(self, local_dir: str, uri_prefix: str) -> list[str]:
        """Copy a directory's files under `uri_prefix`; return the URIs written."""

    @abstractmethod
    def list(self, uri_prefix: str) -> list[str]:
        """URIs of the objects under a prefix, sorted."""

    @abstractmethod
    def read_bytes(self, uri: str) -> bytes: ...


class ContainerImageBackend(ConfigurableResource, ABC):
    @abstractmethod
    def build(self, context: Any, plan: ContainerImagePlan) -> StepOutcome:
        """Make the runtime exist (reuse it when `plan.content_hash` is unchanged)."""


class NotebookBackend(ConfigurableResource, ABC):
    @abstractmethod
    def run(self, context: Any, plan: NotebookPlan) -> StepOutcome: ...


class GlueBackend(ConfigurableResource, ABC):
    @abstractmethod
    def run(self, context: Any, plan: GluePlan) -> StepOutcome: ...


class PythonScriptBackend(ConfigurableResource, ABC):
    @abstractmethod
    def run(self, context: Any, plan: PythonScriptPlan) -> StepOutcome: ...


class SqlBackend(ConfigurableResource, ABC):
    @abstractmethod
    def run(self, context: Any, plan: SqlPlan) -> StepOutcome: ...
