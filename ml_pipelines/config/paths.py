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
names must exist. No name may leave its folder (`../x`, absolute paths). Every folder and
file the load uses must lie inside the project once symlinks are resolved (a symlink that
stays inside is fine), and not in its LOCAL state (`.ml_pipelines/`): one that leaves, or
loops, is a problem at the key naming the file or folder, and nothing behind it is read.
A `lib/` is walked once per load: at most MAX_TREE_ENTRIES entries and MAX_TREE_BYTES.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from ml_pipelines.config.schema import (
    ContainerImageStep,
    GlueStep,
    NotebookStep,
    PipelineConfig,
    PythonScriptStep,
    SqlStep,
    StepBase,
    StepKind,
)

PROJECT_DIR_ENV = "ML_PIPELINES_PROJECT_DIR"
DEFAULT_PARAMETER_FILE = "parameters.json"
DEFAULT_REQUIREMENTS_FILE = "requirements.txt"

# The LOCAL state folder under the project (storage of every team): never project files.
LOCAL_STATE_DIR = ".ml_pipelines"
# A lib/ (or jars/, py_files/) is shipped with each run and digested at every cold load;
# real ones hold tens of files. Beyond these the load stops walking it and reports it.
MAX_TREE_ENTRIES = 10_000  # files and folders
MAX_TREE_BYTES = 200 * 1024 * 1024

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


class FsMemo:
    """Filesystem facts for one load: each path is built, stat'ed, resolved or listed once.

    Pipelines that share a model folder ask `resolve_step_files` the same questions; one
    FsMemo per load (the load's `LoadSession.fs`) answers the repeats from memory, and
    the next load, with its own memo, sees an edited project afresh. Without one, each
    `resolve_step_files` call uses a fresh memo: the same answers.
    """

    def __init__(self) -> None:
        self._children: dict[tuple[Path, str], Path] = {}
        self._is_dir: dict[Path, bool] = {}
        self._is_file: dict[Path, bool] = {}
        self._resolved: dict[Path, Path] = {}
        self._inside: dict[tuple[Path, Path], bool] = {}
        self._files: dict[tuple[Path, str], tuple[Path, ...]] = {}
        self._name_faults: dict[str, str | None] = {}
        self._escapes: dict[tuple[Path, Path], str | None] = {}
        self._tree_faults: dict[tuple[Path, Path], str | None] = {}

    def name_fault(self, text: str) -> str | None:
        """Why `text` (stripped) cannot name something inside a folder, or None when it can."""
        try:
            return self._name_faults[text]
        except KeyError:
            pass
        fault = None
        if not text:
            fault = "empty"
        elif "\\" in text:
            fault = "backslash"
        else:
            pure = PurePosixPath(text)
            if pure.is_absolute() or (len(text) > 1 and text[1] == ":"):
                fault = "absolute"
            elif ".." in pure.parts:
                fault = "parent"
        self._name_faults[text] = fault
        return fault

    def child(self, folder: Path, name: str) -> Path:
        """`folder / name`."""
        key = (folder, name)
        path = self._children.get(key)
        if path is None:
            path = self._children[key] = folder / name
        return path

    def is_dir(self, path: Path) -> bool:
        found = self._is_dir.get(path)
        if found is None:
            found = self._is_dir[path] = path.is_dir()
        return found

    def is_file(self, path: Path) -> bool:
        found = self._is_file.get(path)
        if found is None:
            found = self._is_file[path] = path.is_file()
        return found

    def resolve(self, path: Path) -> Path:
        resolved = self._resolved.get(path)
        if resolved is None:
            resolved = self._resolved[path] = path.resolve()
        return resolved

    def inside(self, base: Path, candidate: Path) -> bool:
        """Whether `candidate`, symlinks resolved, lies in `base` (resolved)."""
        key = (base, candidate)
        found = self._inside.get(key)
        if found is None:
            try:
                self.resolve(candidate).relative_to(self.resolve(base))
                found = True
            except ValueError:
                found = False
            self._inside[key] = found
        return found

    def escape(self, root: Path, path: Path) -> str | None:
        """Why `path` (built under the resolved project `root`) is not a project file once
        symlinks are resolved, naming the symlink at fault; None when it is."""
        key = (root, path)
        if key not in self._escapes:
            try:
                parts = self.resolve(path).relative_to(self.resolve(root)).parts
                inside = parts[:1] != (LOCAL_STATE_DIR,)
            except (ValueError, RuntimeError, OSError):  # outside, or resolve() met a symlink loop
                inside = False
            self._escapes[key] = None if inside else self._link_fault(root, path)
        return self._escapes[key]

    def _link_fault(self, root: Path, path: Path) -> str:
        """The first symlink on the way from `root` to `path` that leads out (or loops)."""
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            return f"{path} is outside the project {root}"
        real_root = self.resolve(root)
        here = root
        for part in parts:
            here = here / part
            try:
                is_link = stat.S_ISLNK(os.lstat(here).st_mode)
            except OSError:
                break
            if not is_link:
                continue
            rel = here.relative_to(root).as_posix()
            try:
                target = os.readlink(here)
                real = here.resolve()
            except (RuntimeError, OSError):
                return f"{rel} is a symlink loop; the load reads only files inside the project"
            try:
                inside = real.relative_to(real_root).parts[:1] != (LOCAL_STATE_DIR,)
            except ValueError:
                inside = False
            if not inside:
                where = (
                    f"in the LOCAL state ({LOCAL_STATE_DIR}/)"
                    if real.is_relative_to(real_root)
                    else "outside the project"
                )
                return f"{rel} is a symlink to {target}, {where}; the load reads only files inside the project"
        return f"{path.relative_to(root).as_posix()} leads outside the project (a symlink?)"

    def tree_fault(self, root: Path, folder: Path) -> str | None:
        """Why the tree under `folder` cannot be used, or None: a symlink in it that leaves
        the project or loops, or more than MAX_TREE_ENTRIES entries or MAX_TREE_BYTES."""
        key = (root, folder)
        if key in self._tree_faults:
            return self._tree_faults[key]
        fault = self._tree_faults[key] = self._walk(root, folder)
        return fault

    def _walk(self, root: Path, folder: Path) -> str | None:
        entries = size = 0
        shown = folder.relative_to(root).as_posix() if folder.is_relative_to(root) else str(folder)
        stack = [(folder, self.resolve(folder))]
        while stack:
            here, real = stack.pop()
            try:
                with os.scandir(here) as it:
                    items = list(it)
            except OSError as exc:
                return f"cannot list {here.relative_to(root).as_posix()}: {exc.strerror or exc}"
            for item in items:
                entries += 1
                if entries > MAX_TREE_ENTRIES:
                    return f"{shown} holds more than {MAX_TREE_ENTRIES} files and folders (the limit)"
                path = Path(item.path)
                try:
                    if item.is_symlink():
                        fault = self.escape(root, path)
                        if fault is not None:
                            return fault
                        if item.is_dir():
                            target = self.resolve(path)
                            if target == real or target in real.parents:
                                rel = path.relative_to(root).as_posix()
                                return f"{rel} is a symlink loop (to {os.readlink(path)})"
                            stack.append((path, target))
                            continue
                    elif item.is_dir(follow_symlinks=False):
                        stack.append((path, real / item.name))
                        continue
                    if item.is_file():
                        size += item.stat().st_size
                except OSError:
                    continue  # a dangling symlink: nothing to read
                if size > MAX_TREE_BYTES:
                    return f"{shown} holds more than {MAX_TREE_BYTES // (1024 * 1024)} MiB (the limit)"
        return None

    def files(self, folder: Path | None, pattern: str) -> tuple[Path, ...]:
        """The files in `folder` matching `pattern`, sorted; () without the folder."""
        if folder is None or not self.is_dir(folder):
            return ()
        key = (folder, pattern)
        found = self._files.get(key)
        if found is None:
            found = self._files[key] = tuple(sorted(p for p in folder.glob(pattern) if p.is_file()))
        return found


@dataclass
class _Lookup:
    paths: ProjectPaths
    step: StepBase
    problems: list[StepFileProblem] = field(default_factory=list)
    fs: FsMemo = field(default_factory=FsMemo)

    def problem(self, where: tuple[str | int, ...], message: str, pipeline_level: bool = False) -> None:
        self.problems.append(StepFileProblem(where, message, pipeline_level))

    def rel(self, path: Path) -> str:
        return self.paths.rel(path)

    def safe_name(self, raw: Any, where: tuple[str | int, ...], what: str, pipeline_level: bool = False) -> str | None:
        """A name that stays in its folder (may hold sub-folders), or None after a problem."""
        text = str(raw).strip()
        fault = self.fs.name_fault(text)
        if fault is None:
            return text
        if fault == "empty":
            self.problem(where, f"{what} is empty", pipeline_level)
        elif fault == "backslash":
            self.problem(where, f"{what} {text!r}: use '/' between folders, not '\\'", pipeline_level)
        elif fault == "absolute":
            self.problem(
                where, f"{what} {text!r} must be a name inside its folder, not an absolute path", pipeline_level
            )
        else:
            self.problem(
                where, f"{what} {text!r} must not contain '..': names cannot leave their folder", pipeline_level
            )
        return None

    def confined(self, path: Path, where: tuple[str | int, ...], pipeline_level: bool = False) -> bool:
        """Whether `path`, symlinks resolved, is a project file (see FsMemo.escape); else a problem."""
        fault = self.fs.escape(self.paths.root, path)
        if fault is None:
            return True
        self.problem(where, fault, pipeline_level)
        return False

    def model_folder_for(self, pipeline: PipelineConfig, model_type: str, needed_by: str) -> Path | None:
        """The Glue model's folder for model_type glue, else the SageMaker model's."""
        if model_type == "glue":
            return self.model_folder(self.paths.glue_models, pipeline.glue_model_name, "glue_model_name", needed_by)
        return self.model_folder(self.paths.sagemaker_models, pipeline.model_name, "model_name", needed_by)

    def model_folder(self, parent: Path, name: str | None, key: str, needed_by: str) -> Path | None:
        if name is None or not str(name).strip():
            self.problem(
                (key,),
                f"{key} is blank, but step {self.step.name!r} ({needed_by}) needs a folder under {parent.name}/",
                True,
            )
            return None
        text = self.safe_name(name, (key,), key, pipeline_level=True)
        if text is None:
            return None
        folder = self.fs.child(parent, text)
        if not self.confined(folder, (key,), pipeline_level=True):
            return None
        if not self.fs.is_dir(folder):
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
        fs = self.fs
        if not self.confined(folder, where):
            return None
        exact = fs.child(folder, text)
        with_suffix = fs.child(folder, text + suffix) if not text.lower().endswith(suffix) else exact
        for candidate in (with_suffix, exact):
            if fs.is_file(candidate):
                return candidate if self.confined(candidate, where) else None
        if required:
            self.problem(where, f"{what} {self.rel(with_suffix)} not found")
        return None

    def optional_file(
        self, folder: Path | None, raw: Any, default: str, suffix: str, where: tuple[str | int, ...], what: str
    ) -> Path | None:
        """An explicitly named file (must exist) or the default one (None when absent)."""
        if folder is None:
            return None
        if raw is not None and str(raw).strip():
            if not self.fs.is_dir(folder):
                self.problem(where, f"{what} {raw!r} is named, but its folder {self.rel(folder)} does not exist")
                return None
            return self.named_file(folder, raw, suffix, where, what)
        candidate = self.fs.child(folder, default)
        return candidate if self.fs.is_file(candidate) and self.confined(candidate, where) else None

    def params(self, folder: Path, holder: Any, where: tuple[str, ...] = ()) -> Path | None:
        """The parameter file named by `holder.param_file_name` (written at `where`), or the default."""
        return self.optional_file(
            folder,
            holder.param_file_name,
            DEFAULT_PARAMETER_FILE,
            ".json",
            (*where, "param_file_name"),
            "parameter file",
        )

    def params_and_requirements(
        self, folder: Path, holder: Any, where: tuple[str, ...] = ()
    ) -> tuple[Path | None, Path | None]:
        """The parameter and requirements files `holder` names, or the defaults."""
        params = self.params(folder, holder, where)
        requirements = self.optional_file(
            folder,
            holder.requirements_file_name,
            DEFAULT_REQUIREMENTS_FILE,
            ".txt",
            (*where, "requirements_file_name"),
            "requirements file",
        )
        return params, requirements

    def lib(self, model_dir: Path, where: tuple[str | int, ...], pipeline_level: bool = False) -> Path | None:
        """`model_dir/lib` when it is a folder whose whole tree may be used, else None."""
        path = self.fs.child(model_dir, "lib")
        if not self.fs.is_dir(path) or not self.confined(path, where, pipeline_level):
            return None
        fault = self.fs.tree_fault(self.paths.root, path)
        if fault is not None:
            self.problem(where, fault, pipeline_level)
            return None
        return path

    def files(
        self, folder: Path | None, pattern: str, where: tuple[str | int, ...], pipeline_level: bool = False
    ) -> tuple[Path, ...]:
        """The project files in `folder` matching `pattern` (see FsMemo.files)."""
        if folder is None or not self.fs.is_dir(folder) or not self.confined(folder, where, pipeline_level):
            return ()
        found = self.fs.files(folder, pattern)
        if len(found) > MAX_TREE_ENTRIES:
            self.problem(
                where,
                f"{self.rel(folder)} holds more than {MAX_TREE_ENTRIES} {pattern} files (the limit)",
                pipeline_level,
            )
            return ()
        if all([self.confined(path, where, pipeline_level) for path in found]):
            return found
        return ()


def container_step_for(pipeline: PipelineConfig, step: StepBase) -> ContainerImageStep | None:
    """The container-image step a notebook runs in: an upstream one, else the first one."""
    containers = [t for t in pipeline.tasks if isinstance(t, ContainerImageStep)]
    for container in containers:
        if container.name in step.upstream_task_name:
            return container
    return containers[0] if containers else None


# The image a notebook runs in when its pipeline has no container-image step.
DEFAULT_IMAGE_STEP = ContainerImageStep(name="ecr_container_creation")


def default_image_files(paths: ProjectPaths, pipeline: PipelineConfig) -> StepFiles:
    """The files of DEFAULT_IMAGE_STEP (python3; the model's requirements.txt when present).
    A missing model folder only leaves model_dir and requirements None: the steps that
    need the folder report it."""
    step = DEFAULT_IMAGE_STEP
    return _container_files(_Lookup(paths, step), pipeline, step)


def resolve_step_files(
    paths: ProjectPaths, pipeline: PipelineConfig, step: StepBase, fs: FsMemo | None = None
) -> StepFiles:
    """The files of `step`; raises StepFilesError listing every problem found.

    `fs`: the filesystem facts of the current load (see FsMemo); default: a fresh one.
    """
    look = _Lookup(paths, step, fs=fs if fs is not None else FsMemo())
    files = _resolve(look, pipeline, step)
    if look.problems:
        raise StepFilesError(look.problems)
    return files


def _container_files(look: _Lookup, pipeline: PipelineConfig, step: ContainerImageStep) -> StepFiles:
    paths = look.paths
    fs = look.fs
    dockerfile = fs.child(fs.child(paths.containers, step.kernel), "Dockerfile")
    dockerfile_or_none = dockerfile if fs.is_file(dockerfile) else None
    if dockerfile_or_none is not None and paths.containers != PRODUCT_CONTAINERS:
        dockerfile_or_none = dockerfile if look.confined(dockerfile, ("kernel",)) else None
    if not (pipeline.model_name or "").strip():
        # A pipeline with only Glue/SQL steps may keep the old container step and no model.
        if step.requirements_file_name:
            look.problem(
                ("requirements_file_name",), "requirements_file_name is set, but the pipeline has no model_name"
            )
        return StepFiles(dockerfile=dockerfile_or_none)
    model_dir = look.model_folder(paths.sagemaker_models, pipeline.model_name, "model_name", "container image")
    requirements = look.optional_file(
        model_dir,
        step.requirements_file_name,
        DEFAULT_REQUIREMENTS_FILE,
        ".txt",
        ("requirements_file_name",),
        "requirements file",
    )
    return StepFiles(model_dir=model_dir, requirements_file=requirements, dockerfile=dockerfile_or_none)


def _no_files(look: _Lookup, pipeline: PipelineConfig, step: StepBase) -> StepFiles:
    return StepFiles()


def _notebook_files(look: _Lookup, pipeline: PipelineConfig, step: NotebookStep) -> StepFiles:
    paths = look.paths
    requirements = dockerfile = None
    container = container_step_for(pipeline, step)
    if container is not None:
        inner = _Lookup(paths, container, fs=look.fs)
        cfiles = _container_files(inner, pipeline, container)
        requirements, dockerfile = cfiles.requirements_file, cfiles.dockerfile
    if not step.notebook_name.strip():
        return StepFiles(requirements_file=requirements, dockerfile=dockerfile)  # no notebook: nothing to run
    model_dir = look.model_folder(paths.sagemaker_models, pipeline.model_name, "model_name", "notebook")
    if model_dir is None:
        return StepFiles()
    notebook = look.named_file(model_dir, step.notebook_name, ".ipynb", ("notebook_name",), "notebook")
    params = look.params(model_dir, step)
    return StepFiles(
        model_dir=model_dir,
        main=notebook,
        parameter_file=params,
        requirements_file=requirements,
        lib_dir=look.lib(model_dir, ("model_name",), pipeline_level=True),
        dockerfile=dockerfile,
    )


def _sql_files(look: _Lookup, pipeline: PipelineConfig, step: SqlStep) -> StepFiles:
    model_dir = look.model_folder_for(pipeline, step.model_type, f"SQL, model_type {step.model_type}")
    if model_dir is None:
        return StepFiles()
    pipeline_dir = look.fs.child(model_dir, "pipeline")
    sql_files = []
    for i, name in enumerate(step.sql_file_names):
        found = look.named_file(pipeline_dir, name, ".sql", ("sql_file_names", i), "SQL file")
        if found is not None:
            sql_files.append(found)
    return StepFiles(model_dir=model_dir, sql_files=tuple(sql_files))


def _glue_files(look: _Lookup, pipeline: PipelineConfig, step: GlueStep) -> StepFiles:
    paths = look.paths
    d = step.Details
    script = look.safe_name(d.script_name, ("Details", "script_name"), "script_name")
    if script is None:
        return StepFiles()
    if d.script_loc == "common":
        common = paths.glue_common
        where: tuple[str, ...] = ("Details", "script_name")
        pipeline_level = False
        main = look.named_file(common, script, ".py", where, "common Glue script")
        model_dir = look.fs.child(common, script.removesuffix(".py"))
        if not look.confined(model_dir, where):
            return StepFiles()
        py_files = look.files(model_dir, "*.py", where) + look.files(
            look.fs.child(model_dir, "py_files"), "*.py", where
        )
    else:
        where, pipeline_level = ("glue_model_name",), True
        folder = look.model_folder(
            paths.glue_models, pipeline.glue_model_name, "glue_model_name", "Glue, script_loc model"
        )
        if folder is None:
            return StepFiles()
        model_dir = folder
        main = look.named_file(model_dir, script, ".py", ("Details", "script_name"), "Glue script")
        py_files = ()
    params, requirements = look.params_and_requirements(model_dir, d, ("Details",))
    return StepFiles(
        model_dir=model_dir,
        main=main,
        parameter_file=params,
        requirements_file=requirements,
        lib_dir=look.lib(model_dir, where, pipeline_level),
        jars=look.files(look.fs.child(model_dir, "jars"), "*.jar", where, pipeline_level),
        py_files=py_files,
    )


def _python_script_files(look: _Lookup, pipeline: PipelineConfig, step: PythonScriptStep) -> StepFiles:
    paths = look.paths
    script = look.safe_name(step.script_name, ("script_name",), "script_name")
    if script is None:
        return StepFiles()
    if step.script_loc == "common":
        where: tuple[str, ...] = ("script_name",)
        pipeline_level = False
        main = look.named_file(paths.py_models, script, ".py", where, "common Python script")
        model_dir = look.fs.child(paths.py_models, script.removesuffix(".py"))
        if not look.confined(model_dir, where):
            return StepFiles()
    else:
        where = ("glue_model_name",) if step.model_type == "glue" else ("model_name",)
        pipeline_level = True
        folder = look.model_folder_for(pipeline, step.model_type, f"Python script, model_type {step.model_type}")
        if folder is None:
            return StepFiles()
        model_dir = folder
        main = look.named_file(
            look.fs.child(model_dir, "python_scripts"), script, ".py", ("script_name",), "Python script"
        )
    params, requirements = look.params_and_requirements(model_dir, step)
    return StepFiles(
        model_dir=model_dir,
        main=main,
        parameter_file=params,
        requirements_file=requirements,
        lib_dir=look.lib(model_dir, where, pipeline_level),
    )


# The files each step kind uses, by kind (one entry per kind).
STEP_FILES: dict[StepKind, Callable[[_Lookup, PipelineConfig, Any], StepFiles]] = {
    StepKind.CONTAINER_IMAGE: _container_files,
    StepKind.NOTEBOOK: _notebook_files,
    StepKind.SQL: _sql_files,
    StepKind.GLUE: _glue_files,
    StepKind.PYTHON_SCRIPT: _python_script_files,
    StepKind.EXTERNAL_WAIT: _no_files,
}


def _resolve(look: _Lookup, pipeline: PipelineConfig, step: StepBase) -> StepFiles:
    return STEP_FILES[step.kind](look, pipeline, step)
