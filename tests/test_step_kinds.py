"""Every step kind is declared completely: config model, files, planner, registry entry, backend."""

from __future__ import annotations

from ml_pipelines.config.paths import STEP_FILES
from ml_pipelines.config.schema import NAME_PREFIXES, STEP_MODELS, StepKind, step_kind_of
from ml_pipelines.environment import build_resources, settings_from_env
from ml_pipelines.plan.resolve import PLANNERS
from ml_pipelines.steps.registry import REGISTRY, RESOURCE_KEYS


def test_each_kind_has_a_model_files_planner_and_registry_entry():
    kinds = set(StepKind)
    assert {m.kind for m in STEP_MODELS} == kinds
    assert set(STEP_FILES) == kinds
    assert set(PLANNERS) == kinds
    assert set(REGISTRY) == kinds
    for kind, spec in REGISTRY.items():
        assert spec.model.kind == kind
        assert (spec.resource_key is None) == (spec.run is None) == (spec.interface is None)


def test_kind_detection_is_derived_from_the_models():
    for model in STEP_MODELS:
        if model.name_prefix:
            assert (model.name_prefix, model.kind) in NAME_PREFIXES
            assert step_kind_of({"name": model.name_prefix + "_x"}) == model.kind.value
    assert step_kind_of({"name": "x", "type": "ExternalTaskSensor"}) == StepKind.EXTERNAL_WAIT.value


def test_local_binds_every_resource_to_its_interface(tmp_path):
    settings = settings_from_env(tmp_path, "LOCAL")
    resources = build_resources(settings, {})
    assert set(RESOURCE_KEYS) <= set(resources)
    for key, interface in RESOURCE_KEYS.items():
        assert isinstance(resources[key], interface)
