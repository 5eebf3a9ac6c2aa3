"""LOCAL notebook steps: papermill in-process against the step's venv kernel.

Storage layout (local mirror of S3, `s3://bucket/key` -> `<storage_root>/bucket/key`); each
run has its own folders, `<run key>` = the Dagster run id (`-retry<N>` for a retry), see
`plan/storage_layout.py`:

- inputs, staged for this run only (two runs at once never touch each other's files):
  `<input_uri>/runs/<run key>/<notebook>.ipynb`, `.../<parameter file>.json`, `.../lib/...`;
- the executed notebook: `<output_uri>/runs/<run key>/<notebook stem>.ipynb` (saved after every
  cell by papermill, so a failed run leaves its partly executed notebook there); the
  materialization's `notebook` metadata links to it;
- a successful run then publishes the notebook to `<output_uri>/<notebook stem>.ipynb` and every
  file the notebook wrote under `output_dir` to `<output_uri>/<relative path>`, each written
  to a temporary name and renamed over the old one. A failed run publishes nothing there: its
  files go to `<output_uri>/runs/<run key>/<relative path>`. Earlier runs' files are not
  deleted, as on S3.

The notebook runs from the staged input copy; the kernel's cwd is a scratch dir under
`<home>/work/` (removed afterwards), `output_dir` is a folder inside it and the staged `lib`
is on the kernel's PYTHONPATH. The kernel spec is looked up only in the env's
`<jupyter_path>/kernels` and the kernel process gets JUPYTER_PATH/PYTHONPATH in its own
environment: nothing in this process's os.environ or cwd is changed. The kernel dies with
the step: a death signal, the run worker's watchdog, and a stop after papermill returns or
is interrupted (procs.py).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from dagster import MetadataValue
from pydantic import Field

from ml_pipelines.local import procs
from ml_pipelines.local.envs import PythonEnv, ensure_python_env
from ml_pipelines.local.storage import LocalStorage, join_uri
from ml_pipelines.plan.model import NotebookPlan
from ml_pipelines.plan.storage_layout import run_key, run_uri
from ml_pipelines.steps import NotebookBackend, StepFailed, StepOutcome, StepPreconditionFailed
from ml_pipelines.steps.links import location_name, notebook_view_url

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _kernel_manager_class(env: PythonEnv, kernel_env: dict[str, str], started: list[Any]) -> type:
    # jupyter and papermill are imported when a notebook runs, not when the code location loads
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    """A kernel manager bound to one env's kernel dir and extra environment variables; each
    kernel process it starts is appended to `started`."""

    class StepKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _step_kernel_spec_manager(self) -> KernelSpecManager:
            return KernelSpecManager(kernel_dirs=[str(env.jupyter_path / "kernels")], ensure_native_kernel=False)

        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            kw["env"] = {**kw.get("env", os.environ), **kernel_env}
            kw.setdefault("transport_encryption", "auto")  # CurveZMQ when the kernel supports it
            kw["preexec_fn"] = procs.preexec()  # dies with this thread (jupyter_client adds its own session)
            await super().start_kernel(**kw)
            process = getattr(self.provisioner, "process", None)
            if process is not None:
                procs.watch(process)
                started.append(process)

    return StepKernelManager


class _LogStream:
    """File-like sink for papermill's stdout_file/stderr_file: each write becomes a log line."""

    def __init__(self, emit: Callable[[str], Any], prefix: str) -> None:
        self._emit, self._prefix = emit, prefix

    def write(self, text: str) -> None:
        if text.strip():
            self._emit(f"{self._prefix}{text.rstrip()}")

    def flush(self) -> None:
        pass  # each line is logged as it is written


def failure_message(plan: NotebookPlan, err: Any) -> str:
    traceback = _ANSI.sub("", "\n".join(err.traceback or []))
    return (
        f"Notebook {plan.notebook.name} failed in cell In [{err.exec_count}] "
        f"(cell index {err.cell_index}): {err.ename}: {err.evalue}\n{traceback}"
    )


class LocalNotebooks(NotebookBackend):
    """Runs a notebook with papermill on this machine, in the env of its container-image step."""

    home: str = Field(description="LOCAL state directory, e.g. <project>/.ml_pipelines.")
    storage: LocalStorage = Field(description="The S3 mirror the step reads and writes (the `storage` resource).")

    def _place_inputs(self, storage: LocalStorage, plan: NotebookPlan, input_uri: str) -> tuple[Path, Path | None]:
        """Copy notebook, parameter file and lib/ to this run's input folder; the local notebook and lib paths."""
        notebook_uri = storage.put_file(str(plan.notebook), join_uri(input_uri, plan.notebook.name))
        if plan.parameter_file is not None:
            storage.put_file(str(plan.parameter_file), join_uri(input_uri, plan.parameter_file.name))
        lib_local: Path | None = None
        if plan.lib_dir is not None:
            lib_uri = join_uri(input_uri, "lib")
            lib_local = storage.path_for(lib_uri)
            shutil.rmtree(lib_local, ignore_errors=True)  # this run's own folder (a retry's leftovers)
            lib_local.mkdir(parents=True)
            for src in sorted(p for p in plan.lib_dir.rglob("*") if p.is_file()):
                rel = src.relative_to(plan.lib_dir)
                if "__pycache__" not in rel.parts:
                    storage.put_file(str(src), join_uri(lib_uri, rel.as_posix()))
        return storage.path_for(notebook_uri), lib_local

    def run(self, context: Any, plan: NotebookPlan) -> StepOutcome:
        start = time.monotonic()
        for path in (plan.notebook, plan.parameter_file):
            if path is not None and not path.is_file():
                raise StepPreconditionFailed(f"Notebook step {plan.run.step_name}: file not found: {path}")
        env = ensure_python_env(Path(self.home), plan.image.kernel, plan.image.requirements_file, context.log)
        storage = self.storage
        key = run_key(context.run_id, getattr(context, "retry_number", 0) or 0)
        run_output_uri = run_uri(plan.output_uri, key)
        input_notebook, lib_local = self._place_inputs(storage, plan, run_uri(plan.input_uri, key))
        notebook_name = f"{plan.notebook.stem}.ipynb"
        output_notebook_uri = join_uri(run_output_uri, notebook_name)
        output_notebook = storage.path_for(output_notebook_uri)
        output_notebook.parent.mkdir(parents=True, exist_ok=True)

        kernel_env = {"JUPYTER_PATH": str(env.jupyter_path)}
        if lib_local is not None:
            kernel_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(lib_local), os.environ.get("PYTHONPATH")) if p)

        work_root = Path(self.home) / "work"
        work_root.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f"{plan.run.pipeline_id}-{plan.run.step_name}-", dir=work_root))
        output_dir = workdir / "output"
        output_dir.mkdir()
        parameters = {**plan.parameters, "output_dir": str(output_dir), "ENV": plan.run.env}
        context.log.info(f"Running {input_notebook} with kernel {env.kernel_name}; output {output_notebook_uri}")

        import papermill
        from papermill.exceptions import PapermillExecutionError

        kernels: list[Any] = []
        succeeded = False
        try:
            papermill.execute_notebook(
                str(input_notebook),
                str(output_notebook),
                parameters=parameters,
                kernel_name=env.kernel_name,
                language="python",  # our kernel names are not papermill translator names
                progress_bar=False,
                stdout_file=_LogStream(context.log.info, ""),
                stderr_file=_LogStream(context.log.info, "[stderr] "),
                # engine kwargs, passed to nbclient: kernel cwd and kernel manager (no os.chdir / os.environ)
                resources={"metadata": {"path": str(workdir)}},
                kernel_manager_class=_kernel_manager_class(env, kernel_env, kernels),
            )
            succeeded = True
        except PapermillExecutionError as err:
            view = notebook_view_url(output_notebook, location_name(context))
            message = failure_message(plan, err) + f"\nPartly executed notebook: {output_notebook_uri}\nView: {view}"
            context.log.error(message)
            raise StepFailed(message) from None
        finally:
            for kernel in kernels:  # still running when papermill was interrupted
                if kernel.poll() is None:
                    procs.stop(kernel)
                procs.finish(kernel)
            # a successful run publishes to the model's output location, a failed one keeps its files
            output_files = storage.put_tree(str(output_dir), plan.output_uri if succeeded else run_output_uri)
            shutil.rmtree(workdir, ignore_errors=True)
        published = storage.put_file(str(output_notebook), join_uri(plan.output_uri, notebook_name))

        duration = round(time.monotonic() - start, 3)
        context.log.info(f"Notebook {plan.notebook.name} finished in {duration}s; {len(output_files)} output file(s)")
        return StepOutcome(
            metadata={
                # one click from the asset page: the webserver's HTML view of this run's copy
                "notebook": MetadataValue.url(notebook_view_url(output_notebook, location_name(context))),
                "notebook_path": MetadataValue.path(str(output_notebook)),
                "output_files": [output_notebook_uri, published, *output_files],
                "output_uri": plan.output_uri,
                "run_output_uri": run_output_uri,
                "duration_s": duration,
                "kernel": plan.image.kernel,
                "kernel_name": env.kernel_name,
            }
        )
