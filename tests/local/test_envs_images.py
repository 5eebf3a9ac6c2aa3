"""LOCAL envs and the container-image backend, run through Dagster."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance

from ml_pipelines.local.envs import LOCAL_KERNELS, ensure_python_env
from ml_pipelines.local.images import LocalContainerImages
from ml_pipelines.plan.model import ContainerImagePlan
from ml_pipelines.steps import StepFailed

from .fixtures.helpers import MODEL_DIR, failure_text, run_identity, run_step, step_metadata

log = logging.getLogger(__name__)


def image_plan(
    kernel: str = "python3", requirements: Path | None = MODEL_DIR / "requirements.txt"
) -> ContainerImagePlan:
    return ContainerImagePlan(
        run=run_identity("ecr_container_creation"),
        kernel=kernel,
        model_dir=MODEL_DIR,
        requirements_file=requirements,
        dockerfile=None,
        content_hash="plan-hash",
        image_name="demo_model_daily-python3",
    )


def test_build_then_reuse(tmp_path: Path, instance: DagsterInstance) -> None:
    backend = LocalContainerImages(home=str(tmp_path / "home"))
    plan = image_plan()

    first = run_step(backend, lambda b, ctx: b.build(ctx, plan), instance)
    assert first.success
    built = step_metadata(first)
    assert built["status"] == "built"
    assert built["requirements"] == ["six"]
    env_dir = Path(built["env_path"])
    assert env_dir.parent == tmp_path / "home" / "envs" and env_dir.name.startswith("python3-")
    kernel_json = env_dir / "share" / "jupyter" / "kernels" / built["kernel_name"] / "kernel.json"
    assert kernel_json.is_file() and str(env_dir / "bin" / "python") in kernel_json.read_text()
    # six is already in the product venv: pip installed nothing into the env
    site_packages = next((env_dir / "lib").glob("python3*/site-packages"))
    assert not list(site_packages.glob("six*"))
    marker_mtime = (env_dir / ".ml_pipelines_env_ready.json").stat().st_mtime_ns

    second = run_step(backend, lambda b, ctx: b.build(ctx, plan), instance)
    assert second.success
    reused = step_metadata(second)
    assert reused["status"] == "reused"
    assert reused["env_path"] == built["env_path"] and reused["content_hash"] == built["content_hash"]
    assert (env_dir / ".ml_pipelines_env_ready.json").stat().st_mtime_ns == marker_mtime

    start = time.perf_counter()
    env = ensure_python_env(tmp_path / "home", "python3", plan.requirements_file, log)
    reuse_s = time.perf_counter() - start
    print(
        f"\nenv build {built['duration_s']}s, reuse via Dagster step {reused['duration_s']}s, direct reuse {reuse_s * 1000:.2f}ms"
    )
    assert env.reused and reuse_s < 1.0

    # the env's Python has its own prefix but sees the product venv's packages
    code = "import six, ipykernel, dagster_pipes, pyspark, sys; print(sys.prefix)"
    out = subprocess.run([str(env.python), "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(env.path)


def test_unknown_kernel_fails_with_local_kernels(tmp_path: Path, instance: DagsterInstance) -> None:
    backend = LocalContainerImages(home=str(tmp_path / "home"))
    result = run_step(backend, lambda b, ctx: b.build(ctx, image_plan(kernel="tensorflow_p36")), instance)
    assert not result.success
    text = failure_text(result)
    assert "StepPreconditionFailed" in text and "'tensorflow_p36'" in text  # not retried
    assert all(k in text for k in LOCAL_KERNELS)


def test_pip_failure_reports_pip_output(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("--no-index\nsurely-not-a-real-package-xyz==9.9\n")
    with pytest.raises(StepFailed) as info:
        ensure_python_env(tmp_path / "home", "python3", req, log)
    message = str(info.value)
    assert "pip install" in message and "surely-not-a-real-package-xyz" in message
    assert not [p for p in (tmp_path / "home" / "envs").glob("python3-*") if p.is_dir()]  # no half-built env left


def test_concurrent_builders_and_half_built_env(tmp_path: Path) -> None:
    home = tmp_path / "home"
    results = []

    def build() -> None:
        results.append(ensure_python_env(home, "python3", None, log))

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.reused for r in results) == [False, True, True]
    assert len({r.path for r in results}) == 1

    env = results[0]
    (env.path / ".ml_pipelines_env_ready.json").unlink()  # as if a build was interrupted
    (env.path / "leftover").write_text("x")
    rebuilt = ensure_python_env(home, "python3", None, log)
    assert not rebuilt.reused and not (env.path / "leftover").exists()
    assert ensure_python_env(home, "python3", None, log).reused
