"""LOCAL Glue steps: the unchanged Glue script on local PySpark, in a subprocess.

The script runs as `<env python> <script> --JOB_NAME <job> [--TempDir <temp_uri>] --key value ...`
with the step env's interpreter (`ensure_python_env("python3", requirements)`, as for the image).
`PYSPARK_SUBMIT_ARGS` carries master, Spark UI off, driver on 127.0.0.1 and the jars, so the
script's bare `SparkContext()` picks them up. PYTHONPATH holds the `awsglue` compatibility
package (see `ml_pipelines/local/awsglue/awsglue/__init__.py` for the supported subset), lib/
and the py files. The script, lib/ and jars are also copied to input/lib/jar URIs under the
storage root, where the AWS backend puts them on S3. The subprocess runs through the same
Pipes-session client as Python-script steps: its stdout/stderr lines go to the Dagster log.
"""

import os
import shlex
import tempfile
import time
from pathlib import Path
from typing import Any

from dagster import ResourceDependency
from pydantic import Field

from ml_pipelines.local.awsglue import COMPAT_ROOT
from ml_pipelines.local.envs import ensure_python_env
from ml_pipelines.local.python_script import CapturingPipesSubprocessClient, pipes_command
from ml_pipelines.local.storage import LocalStorage, join_uri, local_to_s3
from ml_pipelines.plan.model import GluePlan
from ml_pipelines.steps import GlueBackend, StepFailed, StepOutcome, StepPreconditionFailed

STORAGE_ROOT_ENV = "ML_PIPELINES_STORAGE_ROOT"  # read by the awsglue compatibility package
_ERROR_LINES = 40
_MAX_OUTPUT_FILES = 50


def glue_arguments(plan: GluePlan) -> list[str]:
    """`--JOB_NAME`, Glue's `--TempDir` unless the plan sets it, then `--key value` per argument."""
    arguments = {"JOB_NAME": plan.job_name, "TempDir": plan.temp_uri}
    arguments.update({k: str(v) for k, v in plan.arguments.items() if k != "JOB_NAME"})
    return [item for key, value in arguments.items() for item in (f"--{key}", value)]


# JIT with the C1 compiler only: a LOCAL job on small data is mostly JVM warm-up, and C2's
# compilations make it CPU-bound (the example Glue job: ~30-35 s instead of ~60-70 s on two
# busy cores). A long job on big data may run slower with it.
DRIVER_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"


def spark_submit_args(master: str, jars: list[Path]) -> str:
    """PYSPARK_SUBMIT_ARGS: read by pyspark when the script's SparkContext starts the JVM."""
    args = [
        "--master",
        master,
        "--driver-java-options",
        DRIVER_JAVA_OPTIONS,
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.ui.showConsoleProgress=false",
        "--conf",
        "spark.driver.host=127.0.0.1",
        "--conf",
        "spark.driver.bindAddress=127.0.0.1",
    ]
    if jars:
        args += ["--jars", ",".join(str(j) for j in jars)]
    return " ".join(shlex.quote(a) for a in [*args, "pyspark-shell"])


def python_path(plan: GluePlan) -> str:
    """The awsglue package, lib/, then each py file (a .py file's folder, a .zip itself)."""
    entries = [str(COMPAT_ROOT)]
    if plan.lib_dir is not None:
        entries.append(str(plan.lib_dir))
    for py_file in plan.py_files:
        entry = str(py_file.parent if py_file.suffix == ".py" else py_file)
        if entry not in entries:
            entries.append(entry)
    if os.environ.get("PYTHONPATH"):
        entries.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(entries)


def error_excerpt(stderr: list[str], limit: int = _ERROR_LINES) -> str:
    """The last Python traceback in stderr (its last `limit` lines), else the last stderr lines."""
    starts = [i for i, line in enumerate(stderr) if line.startswith("Traceback (most recent call last)")]
    lines = stderr[starts[-1] :] if starts else stderr
    return "\n".join(lines[-limit:])


def unsupported_in_local(stderr: list[str]) -> bool:
    """Whether the script's last traceback ends in awsglue's UnsupportedInLocal (or a subclass)."""
    starts = [i for i, line in enumerate(stderr) if line.startswith("Traceback (most recent call last)")]
    if not starts:
        return False
    # the exception line: the first one after the header that is not an indented frame line
    exception = next((line for line in stderr[starts[-1] + 1 :] if line and not line[0].isspace()), "")
    return exception.startswith(("awsglue.UnsupportedInLocal", "UnsupportedInLocal"))


class LocalGlue(GlueBackend):
    """Runs a Glue PySpark script on this machine's Spark."""

    home: str = Field(description="LOCAL state directory (envs live under <home>/envs).")
    # no `from __future__ import annotations` here: Dagster reads this annotation at runtime
    pipes: ResourceDependency[CapturingPipesSubprocessClient] = Field(
        description="Starts the script in its Dagster Pipes session (the `pipes` resource)."
    )
    storage: LocalStorage = Field(description="The S3 mirror the step reads and writes (the `storage` resource).")
    spark_master: str = Field(default="local[*]", description="Spark master URL for the script.")

    def _upload(self, plan: GluePlan) -> list[str]:
        """Copy script, lib/, py files and jars where the job finds them on S3."""
        storage = self.storage
        uploaded = [storage.put_file(str(plan.script), join_uri(plan.input_uri, plan.script.name))]
        if plan.lib_dir is not None and plan.lib_dir.is_dir():
            uploaded += storage.put_tree(str(plan.lib_dir), plan.lib_uri)
        for py_file in plan.py_files:
            uploaded.append(storage.put_file(str(py_file), join_uri(plan.lib_uri, py_file.name)))
        for jar in plan.jars:
            uploaded.append(storage.put_file(str(jar), join_uri(plan.jar_uri, jar.name)))
        return uploaded

    def _outputs(self, plan: GluePlan) -> dict[str, list[str]]:
        """Files under each s3:// (or mapped local) argument whose name starts with "output"."""
        storage = self.storage
        root = Path(self.storage.root).resolve()
        outputs = {}
        for key, value in plan.arguments.items():
            value = str(value)
            if not key.lower().startswith("output"):
                continue
            if value.startswith("/") and root in Path(value).resolve().parents:
                value = local_to_s3(value, root)
            if value.startswith("s3://"):
                files = [u for u in storage.list(value) if not Path(u).name.startswith((".", "_"))]
                outputs[key] = files[:_MAX_OUTPUT_FILES]
        return outputs

    def run(self, context: Any, plan: GluePlan) -> StepOutcome:
        start = time.monotonic()
        for path in (plan.script, *plan.jars, *plan.py_files):
            if not path.is_file():
                raise StepPreconditionFailed(f"Glue job {plan.job_name}: file not found: {path}")
        uploaded = self._upload(plan)
        env = ensure_python_env(Path(self.home), "python3", plan.requirements_file, context.log)
        arguments = glue_arguments(plan)
        command = pipes_command(env.python, plan.script, arguments)
        extra_env = {
            "PYSPARK_SUBMIT_ARGS": spark_submit_args(self.spark_master, list(plan.jars)),
            "PYSPARK_PYTHON": str(env.python),  # Python workers (UDFs) use the step env too
            "PYTHONPATH": python_path(plan),
            "PYTHONUNBUFFERED": "1",
            "SPARK_LOCAL_IP": "127.0.0.1",
            STORAGE_ROOT_ENV: str(Path(self.storage.root).resolve()),
        }
        context.log.info(f"Running Glue job {plan.job_name}: {shlex.join(command)}")
        # Glue runs a script in a scratch folder: so do we, so nothing lands in the repo.
        with tempfile.TemporaryDirectory(prefix="ml-pipelines-glue-") as cwd:
            run = self.pipes.run_captured(context=context, command=command, env=extra_env, cwd=cwd, tail_lines=200)
        duration = round(time.monotonic() - start, 3)
        if run.returncode != 0:
            # a Glue API the LOCAL awsglue module lacks fails every attempt the same way
            failed = StepPreconditionFailed if unsupported_in_local(run.stderr_tail) else StepFailed
            raise failed(
                f"Glue job {plan.job_name} ({plan.script.name}) failed with exit code {run.returncode} "
                f"after {duration}s:\n{error_excerpt(run.stderr_tail)}"
            )
        metadata: dict[str, Any] = {}
        for result in run.reported:  # anything the script reported through dagster-pipes
            metadata.update(getattr(result, "metadata", None) or {})
        metadata.update(
            {
                "duration_s": duration,
                "job_name": plan.job_name,
                "arguments": {k.removeprefix("--"): v for k, v in zip(arguments[::2], arguments[1::2], strict=True)},
                "uploaded": uploaded,
            }
        )
        if outputs := self._outputs(plan):
            metadata["output_files"] = outputs
        return StepOutcome(metadata=metadata)
