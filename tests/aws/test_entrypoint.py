"""containers/papermill_entrypoint.py run as the container runs it: a subprocess with the venv's
`python3` kernel, on a temp folder laid out like /opt/ml (its paths passed as options).

The Docker test builds containers/python3/Dockerfile and runs a notebook in it; it skips
where `docker info` fails (no engine)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO_ROOT / "containers" / "papermill_entrypoint.py"
DOCKERFILE = REPO_ROOT / "containers" / "python3" / "Dockerfile"

# writes what it got to output_dir/result.json; a module of lib/ must be importable
RESULT_CELL = """
import json, os, nb_helper_lib
print("cell says hello")
with open(os.path.join(output_dir, "result.json"), "w") as f:
    json.dump({"a": a, "b": b, "c": c, "ENV": ENV, "output_dir": output_dir, "lib": nb_helper_lib.VALUE}, f)
"""


def write_notebook(path: Path, *cells: str, parameters: str = "a = 0\nb = 'default'\nc = None") -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(src) for src in cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


@pytest.fixture
def opt_ml(tmp_path: Path) -> Path:
    """<root> standing for /opt/ml: processing/input with a notebook and lib/, processing/output."""
    root = tmp_path / "opt_ml"
    inp = root / "processing" / "input"
    write_notebook(inp / "Forecast.ipynb", RESULT_CELL)
    (inp / "lib").mkdir(parents=True)
    (inp / "lib" / "nb_helper_lib.py").write_text("VALUE = 'from lib'\n")
    (root / "processing" / "output").mkdir(parents=True)
    return root


def run_entrypoint(root: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        str(ENTRYPOINT),
        *args,
        "--input-dir",
        str(root / "processing" / "input"),
        "--output-dir",
        str(root / "processing" / "output"),
        "--failure-file",
        str(root / "output" / "message"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTEBOOK_") and k != "ENV"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def result(root: Path) -> dict:
    return json.loads((root / "processing" / "output" / "result.json").read_text())


def test_sectioned_parameter_file_and_json_overlay(opt_ml: Path):
    (opt_ml / "processing" / "input" / "params.json").write_text(
        json.dumps({"COMMON": {"a": 1, "b": "common"}, "DEV": {"b": "dev"}, "PROD": {"b": "prod"}})
    )
    proc = run_entrypoint(
        opt_ml, "--notebook", "Forecast", "--env", "dev", "--parameters", "params", "--parameters-json", '{"c": 3}'
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = opt_ml / "processing" / "output"
    assert result(opt_ml) == {"a": 1, "b": "dev", "c": 3, "ENV": "DEV", "output_dir": str(out), "lib": "from lib"}
    executed = nbformat.read(str(out / "Forecast.ipynb"), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'b = "dev"' in injected[0].source
    assert "cell says hello" in proc.stdout  # cell output reaches the container log
    assert not (opt_ml / "output" / "message").exists()


def test_absolute_parameter_file_outside_input_dir(opt_ml: Path):
    """How the backend passes the per-run file: a path outside the input dir, flat JSON."""
    (opt_ml / "processing" / "input" / "parameters.json").write_text(json.dumps({"a": 99, "b": "ignored"}))
    run_file = opt_ml / "processing" / "run" / "ml_pipelines_parameters.json"
    run_file.parent.mkdir(parents=True)
    run_file.write_text(json.dumps({"a": 2, "b": "run", "c": [1, 2], "ENV": "DEV"}))
    proc = run_entrypoint(opt_ml, "--notebook", "Forecast.ipynb", "--env", "DEV", "--parameters", str(run_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = str(opt_ml / "processing" / "output")
    assert result(opt_ml) == {"a": 2, "b": "run", "c": [1, 2], "ENV": "DEV", "output_dir": out, "lib": "from lib"}


def test_default_parameters_json_and_missing_file(opt_ml: Path):
    (opt_ml / "processing" / "input" / "parameters.json").write_text(json.dumps({"a": 5, "b": "flat", "c": 0}))
    proc = run_entrypoint(opt_ml, "--notebook", "Forecast", "--env", "BETA")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result(opt_ml)["a"] == 5 and result(opt_ml)["ENV"] == "BETA"

    missing = run_entrypoint(opt_ml, "--notebook", "Forecast", "--env", "DEV", "--parameters", "/nowhere/p.json")
    assert missing.returncode != 0 and "parameter file not found: /nowhere/p.json" in missing.stderr


def test_missing_notebook_exits_2_with_failure_message(opt_ml: Path):
    proc = run_entrypoint(opt_ml, "--notebook", "Nope", "--env", "DEV")
    assert proc.returncode == 2
    assert "notebook not found" in (opt_ml / "output" / "message").read_text()


def test_failing_cell_exits_1_saves_notebook_and_failure(opt_ml: Path):
    inp = opt_ml / "processing" / "input"
    write_notebook(
        inp / "Broken.ipynb",
        "open(output_dir + '/partial.txt', 'w').write('before the failure')",
        "raise ValueError('bad input for ' + ENV)",
        "print('never')",
    )
    proc = run_entrypoint(opt_ml, "--notebook", "Broken", "--env", "DEV")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    message = (opt_ml / "output" / "message").read_text()
    assert message.startswith("Broken.ipynb failed in cell In [") and "ValueError: bad input for DEV" in message
    out = opt_ml / "processing" / "output"
    assert (out / "partial.txt").read_text() == "before the failure"
    executed = nbformat.read(str(out / "Broken.ipynb"), as_version=4)
    errors = [
        o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"
    ]
    assert errors and errors[0].ename == "ValueError"
    assert not any("never" in str(c.get("outputs")) for c in executed.cells)


def _docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "docker CLI not installed"
    try:
        proc = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "docker info timed out"
    if proc.returncode == 0:
        return None
    lines = [ln.strip() for ln in (proc.stderr + "\n" + proc.stdout).splitlines() if ln.strip()]
    first = next(
        (ln for ln in lines if "error" in ln.lower() or "cannot connect" in ln.lower()), lines[0] if lines else ""
    )
    return f"no Docker engine: {first}"


def test_notebook_runs_in_the_python3_image(tmp_path: Path, opt_ml: Path):
    """Needs a Docker engine (and the base image or a registry for `pip install`)."""
    reason = _docker_unavailable()
    if reason:
        pytest.skip(reason)
    ctx = tmp_path / "context"
    ctx.mkdir()
    shutil.copy(DOCKERFILE, ctx / "Dockerfile")
    shutil.copy(ENTRYPOINT, ctx / "papermill_entrypoint.py")
    (ctx / "requirements.txt").write_text("")
    tag = f"ml-pipelines-entrypoint-test:{uuid.uuid4().hex[:12]}"
    build = subprocess.run(["docker", "build", "-q", "-t", tag, str(ctx)], capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr[-2000:]
    try:
        write_notebook(
            opt_ml / "processing" / "input" / "Tiny.ipynb",
            "open(output_dir + '/tiny.txt', 'w').write(f'{x} {ENV}')",
            parameters="x = 0",
        )
        (opt_ml / "output").mkdir(exist_ok=True)
        run = subprocess.run(
            ["docker", "run", "--rm", "-v", f"{opt_ml / 'processing'}:/opt/ml/processing"]
            + ["-v", f"{opt_ml / 'output'}:/opt/ml/output", tag]
            + ["--notebook", "Tiny", "--env", "DEV", "--parameters-json", '{"x": 7}'],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        out = opt_ml / "processing" / "output"
        assert (out / "tiny.txt").read_text() == "7 DEV"
        assert (out / "Tiny.ipynb").is_file()
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, timeout=120)
