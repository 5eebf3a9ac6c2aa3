"""Config -> plan: each step resolved for an environment and a time window.

`resolve.plan_step` builds the frozen plans of `model.py` that the Dagster assets hand to
the backends (and `ml-pipelines plan` prints); `images.py` decides the image a notebook
runs in; `versions.step_code_version` gives each asset its code version;
`windows.window_for` the time window of a run. Nothing here imports Dagster or AWS.
"""

from ml_pipelines.plan.resolve import image_plan, is_noop_step, plan_step
from ml_pipelines.plan.storage_layout import PlanError
from ml_pipelines.plan.versions import step_code_version
from ml_pipelines.plan.windows import cron_of, window_for

__all__ = [
    "PlanError",
    "cron_of",
    "image_plan",
    "is_noop_step",
    "plan_step",
    "step_code_version",
    "window_for",
]
