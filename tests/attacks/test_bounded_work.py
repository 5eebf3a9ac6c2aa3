"""Issue 10: work a config or a model file can make the product do is bounded.

Each test is one reproduction: a template that builds a huge string or loops for ever, a
catchup schedule with a million partitions, a requirements file that pulls in another, a
notebook nested deeper than the recursion limit.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ml_pipelines.plan import versions

# -- templates ------------------------------------------------------------------------------
_RENDER = """
import json, resource, sys, time
from ml_pipelines.config.templates import TemplateRenderError, render, template_context
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # an unbounded render fails here, not the machine
start = time.monotonic()
try:
    render(sys.argv[1], template_context(None, "DEV", {}), where="step s, templates_dict.k")
    outcome = "rendered"
except TemplateRenderError as exc:
    outcome = "TemplateRenderError: " + str(exc)
except BaseException as exc:
    outcome = type(exc).__name__
print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - start}))
"""


def _render_in_subprocess(template: str) -> dict:
    """Render in a child process with 3 GiB of address space and a time-out, so that a
    render that is not bounded fails the test instead of exhausting the machine."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _RENDER, template], capture_output=True, text=True, timeout=30, env=env
        )
    except subprocess.TimeoutExpired:
        return {"outcome": "timed out after 30 s", "seconds": 30.0}
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"outcome": f"exit {proc.returncode}: {proc.stderr[-500:]}", "seconds": 0.0}
    return json.loads(proc.stdout)


@pytest.mark.parametrize(
    "template, message",
    [
        ("{{ 'x'.center(8000000000) }}", "width 8000000000 is larger than 1,000,000"),
        ("{{ 'x' | center(8000000000) }}", "width 8000000000 is larger than 1,000,000"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "loops ran more than 1,000,000 iterations",
        ),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{{ 'x' * 10 }}{% endfor %}{% endfor %}",
            "template output longer than 1,000,000 characters",
        ),
    ],
)
def test_template_bombs_fail_as_template_errors_in_bounded_time_and_memory(template, message):
    result = _render_in_subprocess(template)
    assert result["outcome"].startswith("TemplateRenderError: ") and message in result["outcome"], result
    assert result["seconds"] < 3.0, result


# -- requirements that include other files -------------------------------------------------
def _model(root: Path) -> Path:
    (root / "model_configs").mkdir(parents=True)
    model = root / "Sagemaker_Models" / "m"
    model.mkdir(parents=True)
    return model


@pytest.mark.parametrize(
    "line", ["-r base.txt", "--requirement base.txt", "-c base.txt", "--constraint=base.txt", "-rbase.txt"]
)
def test_a_changed_included_requirements_file_changes_the_image_version(tmp_path, line):
    model = _model(tmp_path)
    (model / "requirements.txt").write_text(f"{line}\npandas\n")
    (model / "base.txt").write_text("numpy==1.26\n")
    before = versions.image_version("python3", model / "requirements.txt", None)
    (model / "base.txt").write_text("numpy==2.0\n")
    assert versions.image_version("python3", model / "requirements.txt", None) != before


def test_nested_includes_are_followed_in_a_cycle_once_and_not_outside_the_project(tmp_path):
    model = _model(tmp_path / "project")
    (tmp_path / "project" / "shared").mkdir()
    (model / "requirements.txt").write_text("-r ../../shared/a.txt\n-r /etc/hostname\n-r ../../../outside.txt\n")
    (tmp_path / "project" / "shared" / "a.txt").write_text("-r b.txt\n")
    (tmp_path / "project" / "shared" / "b.txt").write_text("-r a.txt\nrequests==2.0\n")  # a cycle
    (tmp_path / "outside.txt").write_text("one\n")
    before = versions.requirements_digest(model / "requirements.txt")
    (tmp_path / "outside.txt").write_text("two\n")  # outside the project: only the line counts
    assert versions.requirements_digest(model / "requirements.txt") == before
    (tmp_path / "project" / "shared" / "b.txt").write_text("-r a.txt\nrequests==2.1\n")  # two levels down
    assert versions.requirements_digest(model / "requirements.txt") != before


def test_a_requirements_file_without_includes_keeps_its_plain_digest(tmp_path):
    model = _model(tmp_path)
    (model / "requirements.txt").write_text("pandas\n# -r base.txt is a comment\n")
    (model / "base.txt").write_text("x\n")
    assert versions.requirements_digest(model / "requirements.txt") == versions.file_digest(model / "requirements.txt")


# -- notebooks and lib/ trees the digest cannot recurse into --------------------------------
def test_a_deeply_nested_notebook_digests_without_recursion_error(tmp_path):
    depth = 100_000
    raw = ('{"cells": [{"cell_type": "code", "source": "x", "outputs": ' + "[" * depth + "]" * depth + "}]}").encode()
    path = tmp_path / "deep.ipynb"
    path.write_bytes(raw)
    assert versions.file_digest(path) == hashlib.sha256(raw).hexdigest()  # by its bytes
    cells = tmp_path / "cells.ipynb"
    cells.write_bytes(b'{"cells": [{"cell_type": ' + b"[" * depth + b"]" * depth + b', "source": "x"}]}')
    assert len(versions.file_digest(cells)) == 64


def _walk_in_subprocess(lib: Path, root: Path) -> list[str]:
    """`_walk_tree` of `lib` in a child process (the unbounded walk is killed, not left running)."""
    code = "import json, sys; from ml_pipelines.plan import versions; "
    code += "print(json.dumps(versions._walk_tree('lib', sys.argv[1], sys.argv[2], None)))"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(lib), f"{root}{os.sep}"], capture_output=True, text=True, timeout=20, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [entry.split("\0")[1] for entry in json.loads(proc.stdout)]


def test_a_lib_tree_deeper_than_the_recursion_limit_is_digested(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    folders = [lib]
    for _ in range(1_200):  # deeper than the recursion limit (os.makedirs itself recurses)
        folders.append(folders[-1] / "d")
        folders[-1].mkdir()
    (folders[-1] / "leaf.py").write_text("X = 1\n")
    try:
        assert _walk_in_subprocess(lib, tmp_path) == ["d/" * 1_200 + "leaf.py"]
    finally:  # pytest's own clean-up (shutil.rmtree) recurses per level
        (folders[-1] / "leaf.py").unlink()
        for folder in reversed(folders[1:]):
            folder.rmdir()


def test_a_symlink_loop_in_lib_is_walked_once(tmp_path):
    lib = tmp_path / "lib"
    (lib / "pkg").mkdir(parents=True)
    (lib / "pkg" / "m.py").write_text("X = 1\n")
    for name in "ab":  # each links back to lib: 2^40 paths if followed blindly
        os.symlink(lib, lib / "pkg" / name)
    os.symlink("/", lib / "root")  # outside the project: not followed
    start = time.monotonic()
    assert _walk_in_subprocess(lib, tmp_path) == ["pkg/m.py"]
    assert time.monotonic() - start < 10


# -- catchup with a million partitions ------------------------------------------------------
def test_a_minutely_catchup_tick_from_2025_is_fast_and_requests_the_oldest_missed_in_its_window(tmp_path):
    from dagster import AssetKey, DagsterRun, build_schedule_context, instance_for_test

    from ml_pipelines.factory import schedules
    from ml_pipelines.factory.assets import PIPELINE_TAG
    from tests.factory.conftest import build_defs
    from tests.factory.tiny_project import PIPELINE_ID, write_tiny_project

    root = write_tiny_project(tmp_path / "p", catchup=True)
    config = root / "model_configs" / "tiny.yml"
    text = config.read_text().replace('"0 6 * * *"', '"* * * * *"').replace('"2024-1-1"', '"2025-1-1"')
    config.write_text(text)
    defs = build_defs(root, tmp_path / "home")
    schedule = defs.get_repository_def().get_schedule_def(f"{PIPELINE_ID}_schedule")
    tick = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)  # about 600,000 partitions since start_date
    oldest = tick - timedelta(minutes=getattr(schedules, "CATCHUP_LOOKBACK_PARTITIONS", 1_000))
    keys = [(oldest + timedelta(minutes=i)).strftime("%Y-%m-%d-%H:%M") for i in range(11)]  # 10 per tick
    with instance_for_test() as instance:
        instance.add_run(
            DagsterRun(
                job_name="__ASSET_JOB",
                run_id="tried-oldest",
                tags={PIPELINE_TAG: PIPELINE_ID, "dagster/partition": keys[0]},
            )
        )
        instance.get_materialized_partitions(AssetKey("warm"))  # set up the event log before timing
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()
        )
        start = time.monotonic()
        requests = schedule.evaluate_tick(context).run_requests
        elapsed = time.monotonic() - start
    assert elapsed < 1.0, f"a catchup tick took {elapsed:.1f} s"
    assert [r.partition_key for r in requests] == keys[1:]


def test_a_changed_nested_requirements_file_makes_a_new_local_env(tmp_path):
    """`-r base.txt`: LOCAL keys its env by the whole closure, so a changed base.txt is installed."""
    from ml_pipelines.local.envs import env_key

    (tmp_path / "model_configs").mkdir()
    model = tmp_path / "Sagemaker_Models" / "m"
    model.mkdir(parents=True)
    (model / "requirements.txt").write_text("-r base.txt\n")
    (model / "base.txt").write_text("six==1.16.0\n")
    before = env_key("python3", model / "requirements.txt")
    (model / "base.txt").write_text("six==1.17.0\n")
    assert env_key("python3", model / "requirements.txt") != before


def test_a_deeply_nested_notebook_is_a_config_error_not_a_crash(tmp_path):
    from ml_pipelines.config.checks import notebook_problems
    from ml_pipelines.factory.describe import notebook_summary

    path = tmp_path / "deep.ipynb"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert notebook_problems(path, "deep.ipynb") == [
        "notebook deep.ipynb: not a Jupyter notebook (its JSON is nested too deeply)"
    ]
    assert notebook_summary(path) is None
    nested_source = tmp_path / "source.ipynb"
    nested_source.write_text('{"cells": [{"cell_type": "markdown", "source": ' + "[" * 5000 + "]" * 5000 + "}]}")
    assert notebook_summary(nested_source) is None
