#!/usr/bin/env python3
"""Entrypoint of the notebook images: runs one notebook with papermill inside a SageMaker
Processing container.

This is what the AWS backend's notebook step runs (it is not used in LOCAL, where the
notebook runs with papermill on this machine). SageMaker Processing downloads the step's
input location to the input dir and uploads the output dir to the step's output location
after the container exits.

    /opt/ml/processing/input/      <notebook>.ipynb, the parameter file, lib/ (importable)
    /opt/ml/processing/output/     <notebook>.ipynb executed, plus every file the notebook
                                   writes to `output_dir`

Parameters reach the notebook's `parameters` cell in this order, later ones winning:

1. `--parameters FILE` (relative to the input dir, default `parameters.json` when it is
   there): a flat JSON object, or a file with COMMON/DEV/BETA/PROD sections, which gives
   COMMON overlaid by the `--env` section;
2. `--parameters-json TEXT` (or the environment variable NOTEBOOK_PARAMETERS_JSON): a JSON
   object, e.g. the step's rendered templates_dict;
3. `output_dir` (the output dir) and `ENV` (the environment).

A failing cell exits with code 1 after papermill has saved the partly executed notebook
to the output dir; the failure is also written to /opt/ml/output/message, which SageMaker
shows as the job's failure reason.

    python papermill_entrypoint.py --notebook ContentForecast_V1 --env DEV \
        --parameters-json '{"dt": "2024-01-05"}'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

INPUT_DIR = "/opt/ml/processing/input"
OUTPUT_DIR = "/opt/ml/processing/output"
FAILURE_FILE = "/opt/ml/output/message"
SECTIONS = ("COMMON", "LOCAL", "DEV", "BETA", "PROD")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run a notebook with papermill in a SageMaker Processing job.")
    parser.add_argument("--notebook", default=os.environ.get("NOTEBOOK_NAME"),
                        help="notebook file in the input dir, with or without .ipynb (env NOTEBOOK_NAME)")
    parser.add_argument("--parameters", default=os.environ.get("NOTEBOOK_PARAMETER_FILE"),
                        help="parameter file in the input dir (default parameters.json when present)")
    parser.add_argument("--parameters-json", default=os.environ.get("NOTEBOOK_PARAMETERS_JSON"),
                        help="JSON object of parameters laid over the file's")
    parser.add_argument("--env", default=os.environ.get("ENV", ""), help="DEV, BETA or PROD (env ENV)")
    parser.add_argument("--kernel", default=os.environ.get("NOTEBOOK_KERNEL", "python3"))
    parser.add_argument("--input-dir", default=INPUT_DIR)
    parser.add_argument("--output-dir", default=OUTPUT_DIR)
    parser.add_argument("--failure-file", default=FAILURE_FILE)
    args = parser.parse_args(argv)
    if not args.notebook:
        parser.error("--notebook (or NOTEBOOK_NAME) is required")
    return args


def load_parameters(input_dir: Path, file_name: str | None, env: str, overlay: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    path = input_dir / (file_name or "parameters.json")
    if file_name and path.suffix != ".json" and not path.is_file():
        path = path.with_name(path.name + ".json")
    if file_name and not path.is_file():
        raise SystemExit(f"parameter file not found: {path}")
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        if not isinstance(data, dict):
            raise SystemExit(f"{path}: expected a JSON object")
        if any(key in SECTIONS for key in data):
            if env not in data:
                raise SystemExit(f"{path}: no section {env or '(none: pass --env)'}; sections: {', '.join(data)}")
            params = {**(data.get("COMMON") or {}), **data[env]}
        else:
            params = dict(data)
    if overlay:
        extra = json.loads(overlay)
        if not isinstance(extra, dict):
            raise SystemExit("--parameters-json must be a JSON object")
        params.update(extra)
    return params


def write_failure(path: str, message: str) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(message[:1000], encoding="utf-8")  # SageMaker keeps 1 KB
    except OSError:
        pass  # the exit code and the log still tell the failure


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    import papermill
    from papermill.exceptions import PapermillExecutionError

    input_dir, output_dir = Path(args.input_dir), Path(args.output_dir)
    name = args.notebook if args.notebook.endswith(".ipynb") else f"{args.notebook}.ipynb"
    notebook = input_dir / name
    if not notebook.is_file():
        message = f"notebook not found: {notebook}"
        write_failure(args.failure_file, message)
        print(message, file=sys.stderr)
        return 2
    env = args.env.upper()
    parameters = load_parameters(input_dir, args.parameters, env, args.parameters_json)
    output_dir.mkdir(parents=True, exist_ok=True)
    parameters.update({"output_dir": str(output_dir), "ENV": env})

    lib = input_dir / "lib"
    if lib.is_dir():  # the kernel inherits this environment
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(lib), os.environ.get("PYTHONPATH")) if p)

    executed = output_dir / name
    print(f"papermill {notebook} -> {executed} (kernel {args.kernel}) with {json.dumps(parameters, default=str)}")
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=parameters,
            kernel_name=args.kernel,
            cwd=str(input_dir),
            progress_bar=False,
            # cell output to the container's stdout/stderr (the job's CloudWatch log); log_output
            # would go to papermill's logger, which nothing here configures
            stdout_file=sys.stdout,
            stderr_file=sys.stderr,
        )
    except PapermillExecutionError as err:
        message = f"{name} failed in cell In [{err.exec_count}]: {err.ename}: {err.evalue}"
        write_failure(args.failure_file, message)
        print(message, file=sys.stderr)
        return 1
    print(f"done: {executed}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
