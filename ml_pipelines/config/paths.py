"""Where a project's folders are, and which files each step uses.

The lookup rules are those of the config reference ("Where the files are looked up"):

| step | model folder (`model_dir`) | main file | parameters / requirements / lib |
|---|---|---|---|
| container image | `Sagemaker_Models/<model_name>` | - | requirements: `requirements_file_name` or `requirements.txt`; Dockerfile: `containers/<kernel>/Dockerfile` |
| notebook | `Sagemaker_Models/<model_name>` | `<notebook_name>[.ipynb]` | `<param_file_name>[.json]` or `parameters.json`; requirements of the pipeline's container step; `lib/` |
| SQL | `Sagemaker_Models/<model_name>` or `Glue_Models/<glue_model_name>` (`model_type`) | - | `pipeline/<sql file>` each |
| Glue, `script_loc: model` | `Glue_Models/<glue_model_name>` | `<script_name>.py` | params, requirements at the folder root; `lib/`, `jars/*.jar` |
| Glue, `script_loc: common` | `Glue_Models/common/<script_name>` | `Glue_Models/common/<script_name>.py` | params, requirements, `lib/`, `jars/*.jar`, `*.py` and `py_files/*.py` in the model folder |
| Python, `script_loc: model` | the Sagemaker or Glue model folder (`model_type`) | `python_scripts/<script_name>.py` | params, requirements at the folder root; `lib/` |
| Python, `script_loc: common` | `Py_Models/<script_name>` | `Py_Models/<script_name>.py` | params, requirements, `lib/` in the model folder |

A default parameter or requirements file that is absent is None; a file the config
names must exist. No name may leave its folder (`../x`, absolute paths, symlinks out).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ml_pipelines.config.schema import (
    ContainerImageStep,
    ExternalWaitStep,
    GlueStep,
    NotebookStep,
    PipelineConfig,
    PythonScriptStep,
    SqlStep,
    StepBase,
)

PROJECT_DIR_ENV = "ML_PIPELINES_PROJECT_DIR"
DEFAULT_PARAMETER_FILE = "parameters.json"
DEFAULT_REQUIREMENTS_FILE = "requirements.txt"

# The product repo's own containers/ (beside the ml_pipelines package).
PRODUCT_CONTAINERS = Path(__file__).resolve().parents[2] / "containers"


def project_root(explicit: str | Path | None = None) -> Path:
    """The project dir: `explicit`, else $ML_PIPELINES_PROJECT_DIR, else the current dir."""
    chosen = explicit if explicit not in (None, "") else os.environ.get(PROJECT_DIR_ENV) or None
    return Path(chosen).expanduser().resolve() if chosen else Path.cwd().resolve()


@dataclass(frozen=True)
class ProjectPaths:
    root: Path
    model_configs: Path
    sagemaker_models: Path
    glue_models: Path
    py_models: Path
    containers: Path

    @classmethod
    def for_root(cls, root: str | Path | None = None) -> ProjectPaths:
        base = project_root(root)
        own_containers = base / "containers"
        return cls(
            root=base,
            model_configs=base / "model_configs",
            sagemaker_models=base / "Sagemaker_Models",
            glue_models=base / "Glue_Models",
            py_models=base / "Py_Models",
            containers=own_containers if own_containers.is_dir() else PRODUCT_CONTAINERS,
        )

    @property
    def glue_common(self) -> Path:
        return self.glue_models / "common"

    def rel(self, path: Path) -> str:
        """`path` relative to the project root when inside it (for messages)."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.as_posix()


@dataclass(frozen=True)
class StepFiles:
    """The files one step uses; None/empty where the step has none."""

    model_dir: Path | None = None
    main: Path | None = None  # notebook, Glue script or Python script
    parameter_file: Path | None = None
    requirements_file: Path | None = None
    lib_dir: Path | None = None
    jars: tuple[Path, ...] = ()
    py_files: tuple[Path, ...] = ()
    sql_files: tuple[Path, ...] = ()
    dockerfile: Path | None = None


@dataclass(frozen=True)
class StepFileProblem:
    """One problem finding a step's files.

    `field` is the key path of the config value at fault, relative to the step (or to the
    pipeline when `pipeline_level`), e.g. ('Details', 'script_name') or ('model_name',).
    """

    field: tuple[str | int, ...]
    message: str
    pipeline_level: bool = False


class StepFilesError(ValueError):
    def __init__(self, problems: list[StepFileProblem]):
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


@dataclass
class _Lookup:
    paths: ProjectPaths
    step: StepBase
    problems: list[StepFileProblem] = field(default_factory=list)

    def problem(self, where: tuple[str | int, ...], message: str, pipeline_level: bool = False) -> None:
        self.problems.append(StepFileProblem(where, message, pipeline_level))

    def rel(self, path: Path) -> str:
        return self.paths.rel(path)

    def safe_name(self, raw: Any, where: tuple[str | int, ...], what: str, pipeline_level: bool = False) -> str | None:
        """A name that stays in its folder (may hold sub-folders), or None after a problem."""
        text = str(raw).strip()
        if not text:
            self.problem(where, f"{what} is empty", pipeline_level)
            return None
        if "\\" in text:
            self.problem(where, f"{what} {text!r}: use '/' between folders, not '\\'", pipeline_level)
            return None
        pure = PurePosixPath(text)
        if pure.is_absolute() or (len(text) > 1 and text[1] == ":"):
            self.problem(where, f"{what} {text!r} must be a name inside its folder, not an absolute path", pipeline_level)
            return None
        if ".." in pure.parts:
            self.problem(where, f"{what} {text!r} must not contain '..': names cannot leave their folder", pipeline_level)
            return None
        return text

    def inside(self, base: Path, candidate: Path, where: tuple[str | int, ...], what: str, pipeline_level: bool = False) -> bool:
        try:
            candidate.resolve().relative_to(base.resolve())
            return True
        except ValueError:
            self.problem(where, f"{what} {self.rel(candidate)} leads outside {self.rel(base)} (a symlink?)", pipeline_level)
            return False

    def model_folder(self, parent: Path, name: str | None, key: str, needed_by: str) -> Path | None:
        if name is None or not str(name).strip():
            self.problem((key,), f"{key} is blank, but step {self.step.name!r} ({needed_by}) needs a folder under {parent.name}/", True)
            return None
        text = self.safe_name(name, (key,), key, pipeline_level=True)
        if text is None:
            return None
        folder = parent / text
        if not self.inside(parent, folder, (key,), key, pipeline_level=True):
            return None
        if not folder.is_dir():
            self.problem((key,), f"model folder {self.rel(folder)} does not exist", True)
            return None
        return folder

    def named_file(
        self, folder: Path, raw: Any, suffix: str, where: tuple[str | int, ...], what: str, required: bool = True
    ) -> Path | None:
        """`folder/<raw>` with `suffix` optional; must exist when `required`."""
        text = self.safe_name(raw, where, what)
        if text is None:
            return None
        exact = folder / text
        with_suffix = folder / (text + suffix) if not text.lower().endswith(suffix) else exact
        for candidate in (with_suffix, exact):
            if candidate.is_file():
                return candidate if self.inside(folder, candidate, where, what) else None
        if required:
            self.problem(where, f"{what} {self.rel(with_suffix)} not found")
        return None

    def optional_file(self, folder: Path | None, raw: Any, default: str, suffix: str, where: tuple[str | int, ...], what: str) -> Path | None:
        """An explicitly named file (must exist) or the default one (None when absent)."""
        if folder is None:
            return None
        if raw is not None and str(raw).strip():
            if not folder.is_dir():
                self.problem(where, f"{what} {raw!r} is named, but its folder {self.rel(folder)} does not exist")
                return None
            return self.named_file(folder, raw, suffix, where, what)
        candidate = folder / default
        return candidate if candidate.is_file() and self.inside(folder, candidate, where, what) else None


def _dir(path: Path | None) -> Path | None:
    return path if path is not None and path.is_dir() else None


def _files(folder: Path | None, pattern: str) -> tuple[Path, ...]:
    if folder is None or not folder.is_dir():
        return ()
    return tuple(sorted(p for p in folder.glob(pattern) if p.is_file()))


def container_step_for(pipeline: PipelineConfig, step: StepBase) -> ContainerImageStep | None:
    """The container-image step a notebook runs in: an upstream one, else the first one."""
    containers = [t for t in pipeline.tasks if isinstance(t, ContainerImageStep)]
    for container in containers:
        if container.name in step.upstream_task_name:
            return container
    return containers[0] if containers else None


def resolve_step_files(paths: ProjectPaths, pipeline: PipelineConfig, step: StepBase) -> StepFiles:
    """The files of `step`; raises StepFilesError listing every problem found."""
    look = _Lookup(paths, step)
    files = _resolve(look, pipeline, step)
    if look.problems:
        raise StepFilesError(look.problems)
    return files


def _container_files(look: _Lookup, pipeline: PipelineConfig, step: ContainerImageStep) -> StepFiles:
    paths = look.paths
    dockerfile = paths.containers / step.kernel / "Dockerfile"
    dockerfile_or_none = dockerfile if dockerfile.is_file() else None
    if not (pipeline.model_name or "").strip():
        # A pipeline with only Glue/SQL steps may keep the old container step and no model.
        if step.requirements_file_name:
            look.problem(("requirements_file_name",), "requirements_file_name is set, but the pipeline has no model_name")
        return StepFiles(dockerfile=dockerfile_or_none)
    model_dir = look.model_folder(paths.sagemaker_models, pipeline.model_name, "model_name", "container image")
    requirements = look.optional_file(
        model_dir, step.requirements_file_name, DEFAULT_REQUIREMENTS_FILE, ".txt", ("requirements_file_name",), "requirements file"
    )
    return StepFiles(model_dir=model_dir, requirements_file=requirements, dockerfile=dockerfile_or_none)


def _resolve(look: _Lookup, pipeline: PipelineConfig, step: StepBase) -> StepFiles:
    paths = look.paths
    if isinstance(step, ExternalWaitStep):
        return StepFiles()

    if isinstance(step, ContainerImageStep):
        return _container_files(look, pipeline, step)

    if isinstance(step, NotebookStep):
        requirements = dockerfile = None
        container = container_step_for(pipeline, step)
        if container is not None:
            inner = _Lookup(paths, container)
            cfiles = _container_files(inner, pipeline, container)
            requirements, dockerfile = cfiles.requirements_file, cfiles.dockerfile
        if not step.notebook_name.strip():
            return StepFiles(requirements_file=requirements, dockerfile=dockerfile)  # no notebook: nothing to run
        model_dir = look.model_folder(paths.sagemaker_models, pipeline.model_name, "model_name", "notebook")
        if model_dir is None:
            return StepFiles()
        notebook = look.named_file(model_dir, step.notebook_name, ".ipynb", ("notebook_name",), "notebook")
        params = look.optional_file(
            model_dir, step.param_file_name, DEFAULT_PARAMETER_FILE, ".json", ("param_file_name",), "parameter file"
        )
        return StepFiles(
            model_dir=model_dir,
            main=notebook,
            parameter_file=params,
            requirements_file=requirements,
            lib_dir=_dir(model_dir / "lib"),
            dockerfile=dockerfile,
        )

    if isinstance(step, SqlStep):
        if step.model_type == "glue":
            model_dir = look.model_folder(paths.glue_models, pipeline.glue_model_name, "glue_model_name", "SQL, model_type glue")
        else:
            model_dir = look.model_folder(paths.sagemaker_models, pipeline.model_name, "model_name", "SQL")
        if model_dir is None:
            return StepFiles()
        pipeline_dir = model_dir / "pipeline"
        sql_files = []
        for i, name in enumerate(step.sql_file_names):
            found = look.named_file(pipeline_dir, name, ".sql", ("sql_file_names", i), "SQL file")
            if found is not None:
                sql_files.append(found)
        return StepFiles(model_dir=model_dir, sql_files=tuple(sql_files))

    if isinstance(step, GlueStep):
        d = step.Details
        script = look.safe_name(d.script_name, ("Details", "script_name"), "script_name")
        if script is None:
            return StepFiles()
        if d.script_loc == "common":
            common = paths.glue_common
            main = look.named_file(common, script, ".py", ("Details", "script_name"), "common Glue script")
            model_dir = common / script.removesuffix(".py")
            py_files = _files(model_dir, "*.py") + _files(model_dir / "py_files", "*.py")
        else:
            folder = look.model_folder(paths.glue_models, pipeline.glue_model_name, "glue_model_name", "Glue, script_loc model")
            if folder is None:
                return StepFiles()
            model_dir = folder
            main = look.named_file(model_dir, script, ".py", ("Details", "script_name"), "Glue script")
            py_files = ()
        params = look.optional_file(
            model_dir, d.param_file_name, DEFAULT_PARAMETER_FILE, ".json", ("Details", "param_file_name"), "parameter file"
        )
        requirements = look.optional_file(
            model_dir,
            d.requirements_file_name,
            DEFAULT_REQUIREMENTS_FILE,
            ".txt",
            ("Details", "requirements_file_name"),
            "requirements file",
        )
        return StepFiles(
            model_dir=model_dir,
            main=main,
            parameter_file=params,
            requirements_file=requirements,
            lib_dir=_dir(model_dir / "lib"),
            jars=_files(model_dir / "jars", "*.jar"),
            py_files=py_files,
        )

    if isinstance(step, PythonScriptStep):
        script = look.safe_name(step.script_name, ("script_name",), "script_name")
        if script is None:
            return StepFiles()
        if step.script_loc == "common":
            main = look.named_file(paths.py_models, script, ".py", ("script_name",), "common Python script")
            model_dir = paths.py_models / script.removesuffix(".py")
        else:
            if step.model_type == "glue":
                folder = look.model_folder(paths.glue_models, pipeline.glue_model_name, "glue_model_name", "Python script, model_type glue")
            else:
                folder = look.model_folder(paths.sagemaker_models, pipeline.model_name, "model_name", "Python script")
            if folder is None:
                return StepFiles()
            model_dir = folder
            main = look.named_file(model_dir / "python_scripts", script, ".py", ("script_name",), "Python script")
        params = look.optional_file(
            model_dir, step.param_file_name, DEFAULT_PARAMETER_FILE, ".json", ("param_file_name",), "parameter file"
        )
        requirements = look.optional_file(
            model_dir, step.requirements_file_name, DEFAULT_REQUIREMENTS_FILE, ".txt", ("requirements_file_name",), "requirements file"
        )
        return StepFiles(
            model_dir=model_dir,
            main=main,
            parameter_file=params,
            requirements_file=requirements,
            lib_dir=_dir(model_dir / "lib"),
        )

    return StepFiles()  # pragma: no cover - every kind is handled above
