"""AWS backends against the DEV sandbox (moto + fakesnow, tests/aws/sandbox.py): API calls by
service for a first run and an unchanged rerun of each step kind, and the wall time of a
pipeline's two independent notebook steps run together against one after the other.

    .venv/bin/python -m bench.bench_aws [--repeat 3] [--job-seconds 8]

Each run is `dagster asset materialize` on the real code location (ML_PIPELINES_ENV=DEV), as
a user runs it. Calls are counted where the moto server receives them (service from the
request's SigV4 scope, operation from X-Amz-Target, the query Action or the S3 method), so
every process of the run is counted, and only those (the stand-ins call it with another key).
An "upload" is an input staged by the product (an S3 PUT carrying x-amz-meta-sha256; a step's
own output files are not counted as uploads); a "build" is a CodeBuild StartBuild.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from unittest import mock
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from tests.aws.sandbox import PIPELINES_KEY, sandbox

REPO = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
PARTITION = "2024-01-05"
FORECAST = "max_ds_ContentForecastDaily"
FEATURES = "max_ds_ViewershipFeatures"
KINDS = {  # step kind -> the example step materialized alone
    "container_image": f"{FORECAST}/ecr_container_creation",
    "notebook": f"{FORECAST}/sagemaker_notebook_job_processing_script",
    "sql": f"{FORECAST}/write_to_snowflake",
    "python_script": f"{FEATURES}/python_script_land_raw_events",
    "glue": f"{FEATURES}/glue_job_processing_script",
}
NOTEBOOKS = [
    f"{FORECAST}/sagemaker_notebook_job_processing_script",
    f"{FORECAST}/sagemaker_notebook_job_processing_script_v2",
]
_SCOPE = re.compile(r"Credential=([^/]+)/\d+/[^/]+/([^/]+)/aws4_request")


class Calls:
    """Requests the moto server received, as (service, operation)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def record(self, environ: dict[str, Any]) -> None:
        """Only the calls of the Dagster processes (not the stand-ins' nor their containers')."""
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if scope is None or scope.group(1) != PIPELINES_KEY:
            return
        service = scope.group(2)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            operation = target.rsplit(".", 1)[-1]
        elif service == "s3":
            copy = environ.get("HTTP_X_AMZ_COPY_SOURCE")
            if copy:
                operation = "CopyObject"
            elif environ.get("REQUEST_METHOD") == "PUT" and "HTTP_X_AMZ_META_SHA256" in environ:
                operation = "Upload"  # S3Storage's staging (steps' own writes carry no sha256)
            else:
                operation = environ.get("REQUEST_METHOD", "?")
        else:
            operation = (parse_qs(environ.get("QUERY_STRING", "")).get("Action") or ["?"])[0]
        with self._lock:
            self.seen.append((service, operation))

    @contextmanager
    def window(self) -> Iterator[list[tuple[str, str]]]:
        start = len(self.seen)
        got: list[tuple[str, str]] = []
        yield got
        got.extend(self.seen[start:])


def summary(calls: list[tuple[str, str]]) -> str:
    by_service = Counter(service for service, _ in calls)
    uploads = sum(1 for _, op in calls if op == "Upload")
    builds = sum(1 for _, op in calls if op == "StartBuild")
    services = " ".join(f"{k}={v}" for k, v in sorted(by_service.items()))
    return f"{len(calls):4d} calls ({services}); uploads={uploads} builds={builds}"


def materialize(env: dict[str, str], keys: list[str]) -> float:
    selection = " or ".join(f'key:"{key}"' for key in keys)
    command = [DAGSTER, "asset", "materialize", "-m", "ml_pipelines.definitions", "--select", selection]
    if keys != [KINDS["container_image"]]:  # the image has no date
        command += ["--partition", PARTITION]
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or "RUN_SUCCESS" not in proc.stderr + proc.stdout:
        raise SystemExit(f"materialize {keys} failed:\n{(proc.stderr + proc.stdout)[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="runs per executor setting for the wall times")
    parser.add_argument("--job-seconds", type=float, default=8.0, help="extra running time of each Processing job")
    args = parser.parse_args()
    calls = Calls()
    original = DomainDispatcherApplication.__call__

    def counted(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        calls.record(environ)
        return original(self, environ, start_response)

    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(DomainDispatcherApplication, "__call__", counted):
        with sandbox() as sandbox_env:
            home = Path(tmp) / "dagster_home"
            home.mkdir()
            (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
            env = {**os.environ, **sandbox_env, "DAGSTER_HOME": str(home), "ML_PIPELINES_PROJECT_DIR": str(REPO),
                   "ML_PIPELINES_HOME": str(Path(tmp) / "ml_home"), "ML_PIPELINES_STRICT": "1"}  # fmt: skip
            print(f"API calls per step kind, partition {PARTITION} (the image is built first: notebooks need it)")
            for kind, key in KINDS.items():
                for label in ("first run", "rerun"):
                    with calls.window() as got:
                        seconds = materialize(env, [key])
                    print(f"  {kind:<16} {label:<9} {summary(got)}  {seconds:5.1f} s")

    print(f"\nTwo independent notebook steps, each job running ~{args.job_seconds:g} s more (median of {args.repeat})")
    walls: dict[int, list[float]] = {0: [], 1: [], 8: []}
    with tempfile.TemporaryDirectory() as tmp, sandbox(delay_s=args.job_seconds) as sandbox_env:
        home = Path(tmp) / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {**os.environ, **sandbox_env, "DAGSTER_HOME": str(home), "ML_PIPELINES_PROJECT_DIR": str(REPO),
               "ML_PIPELINES_HOME": str(Path(tmp) / "ml_home")}  # fmt: skip
        materialize(env, [KINDS["container_image"]])
        for _ in range(args.repeat):  # interleaved
            walls[0].append(materialize(env, NOTEBOOKS[:1]))
            for parallel in (1, 8):
                walls[parallel].append(
                    materialize({**env, "ML_PIPELINES_MAX_PARALLEL_STEPS": str(parallel)}, NOTEBOOKS)
                )
    alone, one, eight = (statistics.median(walls[n]) for n in (0, 1, 8))
    print(f"  one notebook alone:                              {alone:5.1f} s  {[round(w, 1) for w in walls[0]]}")
    print(f"  in sequence (ML_PIPELINES_MAX_PARALLEL_STEPS=1): {one:5.1f} s  {[round(w, 1) for w in walls[1]]}")
    print(f"  together    (DEV default, 8):                    {eight:5.1f} s  {[round(w, 1) for w in walls[8]]}")
    print(f"  ratio together/sequence: {eight / one:.2f}; together/alone: {eight / alone:.2f}")


if __name__ == "__main__":
    main()
