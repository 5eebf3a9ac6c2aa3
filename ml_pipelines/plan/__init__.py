"""Config -> plan: each step resolved for an environment and a time window.

`resolve.plan_step` builds the frozen plans of `model.py` that the Dagster assets hand to
the backends; `resolve.plan_as_dict` is what `ml-pipelines plan` prints;
`versions.step_code_version` gives each asset its code version. Nothing here imports
Dagster or AWS.
"""

from ml_pipelines.plan.resolve import PlanError, image_plan, is_noop_step, plan_as_dict, plan_step, window_for
from ml_pipelines.plan.versions import step_code_version

__all__ = ["PlanError", "image_plan", "is_noop_step", "plan_as_dict", "plan_step", "step_code_version", "window_for"]
