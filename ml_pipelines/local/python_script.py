"""LOCAL Python-script steps: `python <script> --key value ...` through Dagster Pipes.

The script runs with the step env's interpreter (`ensure_python_env("python3", requirements)`),
cwd = plan.script_dir (the script's own folder when that does not exist), lib/ on PYTHONPATH,
inside the step's Pipes session (pipes_launcher.py). A script that calls
`dagster_pipes.open_dagster_pipes()` can log and report metadata; a plain script works too.

`PipesSubprocessClient` either lets the child inherit this process's stdout/stderr
(`forward_stdio=True`: not in the event log, no tail for the error) or sets them to PIPE
and never reads them (`forward_stdio=False`: lost, and a chatty child blocks on a full
pipe). `CapturingPipesSubprocessClient.run_captured` keeps the same Pipes session but
reads both pipes in threads: every line goes to `context.log` and the last lines are
kept for the error message and metadata.
"""

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE
from typing import IO, Any

from dagster import MaterializeResult, MetadataValue, PipesSubprocessClient, ResourceDependency, open_pipes_session
from dagster._core.pipes.context import PipesExecutionResult
from pydantic import Field

from ml_pipelines.local import procs
from ml_pipelines.local.envs import ensure_python_env
from ml_pipelines.plan.model import PythonScriptPlan
from ml_pipelines.steps import PythonScriptBackend, StepFailed, StepOutcome, StepPreconditionFailed

TAIL_LINES = 30


@dataclass
class CapturedRun:
    returncode: int
    stdout_tail: list[str]
    stderr_tail: list[str]
    reported: Sequence[PipesExecutionResult]  # results the script reported through Pipes


class CapturingPipesSubprocessClient(PipesSubprocessClient):
    """PipesSubprocessClient whose child's stdout/stderr go line by line to context.log.

    The child runs in its own process group and dies with the step (procs.py); a cancelled
    step stops the whole group: SIGTERM, then SIGKILL after `grace_s` seconds.
    """

    grace_s: float = procs.GRACE_S

    def run_captured(
        self,
        *,
        context: Any,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        tail_lines: int = TAIL_LINES,
    ) -> CapturedRun:
        tails: dict[str, deque[str]] = {"stdout": deque(maxlen=tail_lines), "stderr": deque(maxlen=tail_lines)}

        def pump(stream: IO[str], name: str) -> None:
            for line in stream:
                line = line.rstrip("\n")
                tails[name].append(line)
                context.log.info(f"[{name}] {line}")

        with open_pipes_session(
            context=context, context_injector=self.context_injector, message_reader=self.message_reader
        ) as session:
            # its own process group, dies with this step (procs.py); SIGTERM: pipes_launcher kills the group
            process = procs.start(
                command,
                death_signal=signal.SIGTERM,
                cwd=cwd or self.cwd,
                env={**os.environ, **self.env, **(env or {}), **session.get_bootstrap_env_vars()},
                stdout=PIPE,
                stderr=PIPE,
                text=True,
                errors="replace",
            )
            assert process.stdout is not None and process.stderr is not None
            pumps = [
                threading.Thread(target=pump, args=(process.stdout, "stdout"), daemon=True),
                threading.Thread(target=pump, args=(process.stderr, "stderr"), daemon=True),
            ]
            for t in pumps:
                t.start()
            try:
                process.wait()
            except BaseException:  # the run is cancelled (DagsterExecutionInterruptedError) or failing
                context.log.info(
                    f"[pipes] execution interrupted: stopping the subprocess (SIGTERM, SIGKILL after {self.grace_s:g}s)."
                )
                procs.stop(process, self.grace_s)
                raise
            finally:
                procs.finish(process)  # what the script left running in its group
                for t in pumps:
                    t.join(timeout=10)  # a detached grandchild holding the pipe open must not hang the step
        return CapturedRun(
            process.returncode, list(tails["stdout"]), list(tails["stderr"]), session.get_reported_results()
        )


PIPES_LAUNCHER = Path(__file__).with_name("pipes_launcher.py")


def pipes_command(python: Path, script: Path, arguments: Sequence[str]) -> list[str]:
    """`python <script> <arguments>`, run inside the step's Pipes session (see pipes_launcher)."""
    return [str(python), str(PIPES_LAUNCHER), str(script), *arguments]


def script_command(python: Path, plan: PythonScriptPlan) -> list[str]:
    args = [item for key, value in plan.arguments.items() for item in (f"--{key}", str(value))]
    return pipes_command(python, plan.script, args)


class LocalPythonScripts(PythonScriptBackend):
    """Runs a Python script on this machine in its requirements' env."""

    home: str = Field(description="LOCAL state directory, e.g. <project>/.ml_pipelines.")
    # no `from __future__ import annotations` here: Dagster reads this annotation at runtime
    pipes: ResourceDependency[CapturingPipesSubprocessClient] = Field(
        description="Starts the script in its Dagster Pipes session (the `pipes` resource)."
    )

    def run(self, context: Any, plan: PythonScriptPlan) -> StepOutcome:
        start = time.monotonic()
        if not plan.script.is_file():
            raise StepPreconditionFailed(f"script not found: {plan.script}")
        env = ensure_python_env(Path(self.home), "python3", plan.requirements_file, context.log)
        extra_env = {"PYTHONUNBUFFERED": "1"}
        if plan.lib_dir is not None:
            extra_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(plan.lib_dir), os.environ.get("PYTHONPATH")) if p)
        command = script_command(env.python, plan)
        # Py_Models/<script>/ exists only when the script has params/lib/requirements
        cwd = plan.script_dir if plan.script_dir.is_dir() else plan.script.parent
        context.log.info(f"Running {' '.join(command)} in {cwd}")
        run = self.pipes.run_captured(context=context, command=command, env=extra_env, cwd=str(cwd))
        duration = round(time.monotonic() - start, 3)
        if run.returncode != 0:
            stderr = "\n".join(run.stderr_tail)
            raise StepFailed(
                f"Script {plan.script.name} exited with code {run.returncode} after {duration}s. "
                f"Last {len(run.stderr_tail)} lines of stderr:\n{stderr}"
            )
        metadata: dict[str, Any] = {}
        for result in run.reported:  # metadata the script reported through Pipes
            if isinstance(result, MaterializeResult) and result.metadata:
                metadata.update(result.metadata)
        metadata.update(
            {
                "exit_code": run.returncode,
                "duration_s": duration,
                "stdout_tail": MetadataValue.text("\n".join(run.stdout_tail)),
            }
        )
        return StepOutcome(metadata=metadata)
