"""LOCAL notebook steps: papermill in-process against the step's venv kernel.

Storage layout (local mirror of S3, `s3://bucket/key` -> `<storage_root>/bucket/key`):

- inputs, placed as they would be uploaded to S3:
  `<input_uri>/<notebook>.ipynb`, `<input_uri>/<parameter file>.json`, `<input_uri>/lib/...`
  (input/lib is replaced on every run so deleted lib files do not linger);
- outputs: `<output_uri>/<notebook stem>.ipynb` is the executed notebook (saved after every
  cell by papermill, so a failed run leaves the partly executed notebook there), and every
  file the notebook wrote under `output_dir` is copied to `<output_uri>/<relative path>`
  (also after a failure). Earlier runs' files are not deleted, as on S3.

The notebook runs from the placed input copy; the kernel's cwd is a scratch dir under
`<home>/work/` (removed afterwards), `output_dir` is a folder inside it and the placed
`input/lib` is on the kernel's PYTHONPATH. The kernel spec is looked up only in the env's
`<jupyter_path>/kernels` and the kernel process gets JUPYTER_PATH/PYTHONPATH in its own
environment: nothing in this process's os.environ or cwd is changed.
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

from ml_pipelines.local.envs import PythonEnv, ensure_python_env
from ml_pipelines.local.storage import LocalStorage, join_uri
from ml_pipelines.plan.model import NotebookPlan
from ml_pipelines.steps import NotebookBackend, StepFailed, StepOutcome, StepPreconditionFailed

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _kernel_manager_class(env: PythonEnv, kernel_env: dict[str, str]) -> type:
    # jupyter and papermill are imported when a notebook runs, not when the code location loads
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    """A kernel manager bound to one env's kernel dir and extra environment variables."""

    class StepKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _step_kernel_spec_manager(self) -> KernelSpecManager:
            return KernelSpecManager(kernel_dirs=[str(env.jupyter_path / "kernels")], ensure_native_kernel=False)

        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            kw["env"] = {**kw.get("env", os.environ), **kernel_env}
            kw.setdefault("transport_encryption", "auto")  # CurveZMQ when the kernel supports it
            await super().start_kernel(**kw)

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

    def _place_inputs(self, storage: LocalStorage, plan: NotebookPlan) -> tuple[Path, Path | None]:
        """Copy notebook, parameter file and lib/ to the input location; return the local notebook and lib paths."""
        notebook_uri = storage.put_file(str(plan.notebook), join_uri(plan.input_uri, plan.notebook.name))
        if plan.parameter_file is not None:
            storage.put_file(str(plan.parameter_file), join_uri(plan.input_uri, plan.parameter_file.name))
        lib_local: Path | None = None
        if plan.lib_dir is not None:
            lib_uri = join_uri(plan.input_uri, "lib")
            lib_local = storage.path_for(lib_uri)
            shutil.rmtree(lib_local, ignore_errors=True)
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
        input_notebook, lib_local = self._place_inputs(storage, plan)
        output_notebook_uri = join_uri(plan.output_uri, f"{plan.notebook.stem}.ipynb")
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

        output_files: list[str]
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
                kernel_manager_class=_kernel_manager_class(env, kernel_env),
            )
        except PapermillExecutionError as err:
            message = failure_message(plan, err) + f"\nPartly executed notebook: {output_notebook_uri}"
            context.log.error(message)
            raise StepFailed(message) from None
        finally:
            output_files = storage.put_tree(str(output_dir), plan.output_uri)
            shutil.rmtree(workdir, ignore_errors=True)

        duration = round(time.monotonic() - start, 3)
        context.log.info(f"Notebook {plan.notebook.name} finished in {duration}s; {len(output_files)} output file(s)")
        return StepOutcome(
            metadata={
                "notebook": MetadataValue.notebook(str(output_notebook)),
                "output_files": [output_notebook_uri, *output_files],
                "output_uri": plan.output_uri,
                "duration_s": duration,
                "kernel": plan.image.kernel,
                "kernel_name": env.kernel_name,
            }
        )
