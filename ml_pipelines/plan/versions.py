"""Code versions: a short hash of what defines a step, so Dagster marks it stale on change.

A step's version (sha256, first 16 hex digits) covers:

- its config (JSON of the step model, without `upstream_task_name`: rewiring
  lineage alone does not change what a step computes) and the pipeline keys that choose
  its files or target (`model_name` / `glue_model_name`, and `schema` for SQL);
- the contents of its files: notebook (cell types and sources only, so re-saving a
  notebook with new outputs does not make it stale), script, parameter file,
  requirements, `lib/` tree (relative names + contents; `__pycache__`, `*.pyc` and
  `.ipynb_checkpoints` ignored), jars, py files, SQL texts, Dockerfile;
- for a notebook, its image's version too.

The container image's version is hash(kernel, requirements text, Dockerfile text); it is
also `ContainerImagePlan.content_hash`.

Files are named relative to the project root (moving the checkout changes nothing). Given
the load's `LoadSession`, each file is read and each `lib/` folder listed once per load,
however many steps share it, and a digest is reused from earlier loads while its file is
unchanged (the load cache); without one, every file is read on every call.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ml_pipelines.config.schema import ContainerImageStep
from ml_pipelines.plan.images import image_files

if TYPE_CHECKING:
    from ml_pipelines.config.loader import LoadedPipeline
    from ml_pipelines.config.paths import ProjectPaths, StepFiles
    from ml_pipelines.config.session import LoadSession

VERSION_LENGTH = 16
_IGNORED_PARTS = frozenset({"__pycache__", ".ipynb_checkpoints", ".DS_Store"})
_IGNORED_SUFFIXES = (".pyc", ".pyo")


def _short(parts: Iterable[str]) -> str:
    """16 hex digits of sha256 over the parts, one per line (parts hold no raw newline:
    config JSON escapes them, file entries are name + digest)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:VERSION_LENGTH]


def _notebook_digest(raw: bytes) -> str:
    """Digest of a notebook's cell types and sources; raw bytes when it is not JSON."""
    try:
        cells = json.loads(raw).get("cells", [])
        content = [
            [cell.get("cell_type"), "".join(s) if isinstance(s := cell.get("source", ""), list) else s]
            for cell in cells
        ]
    except (ValueError, AttributeError, TypeError):
        return hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


def file_digest(path: Path | str, session: LoadSession | None = None) -> str:
    """sha256 of a file's content (of a notebook's cells, see `_notebook_digest`); "missing"
    if absent. With the load's `session`: read once per load, reused while unchanged."""
    text = os.fspath(path)
    if session is None:
        return _read_digest(text)
    return session.from_file("digest", text, lambda: _read_digest(text))


def _read_digest(text: str) -> str:
    try:
        raw = Path(text).read_bytes()
    except OSError:
        return "missing"
    return _notebook_digest(raw) if text.endswith(".ipynb") else hashlib.sha256(raw).hexdigest()


def _display(path: Path | str, root: str | None) -> str:
    """`path` relative to the project root (POSIX slashes) when inside it."""
    text = os.fspath(path)
    if root is not None and text.startswith(root):
        text = text[len(root) :]
    return text.replace(os.sep, "/")


def _tree_entries(role: str, directory: Path | str, root: str | None, session: LoadSession | None) -> list[str]:
    """Relative names and digests of every file under `directory` (sorted, caches ignored);
    listed once per load with a `session`."""
    top = os.fspath(directory)
    if session is None:
        return _walk_tree(role, top, root, None)
    return list(session.once(("version tree", role, top, root), lambda: _walk_tree(role, top, root, session)))


def _walk_tree(role: str, top: str, root: str | None, session: LoadSession | None) -> list[str]:
    entries: list[str] = []

    def walk(folder: str, prefix: str) -> None:
        try:
            with os.scandir(folder) as it:
                items = sorted(it, key=lambda e: e.name)
        except OSError:
            return
        for item in items:
            if item.name in _IGNORED_PARTS:
                continue
            if item.is_dir():
                walk(item.path, f"{prefix}{item.name}/")
            elif item.is_file() and not item.name.endswith(_IGNORED_SUFFIXES):
                entries.append(f"{role}\0{prefix}{item.name}\0{file_digest(item.path, session)}")

    if not os.path.isdir(top):
        return [f"{role}\0{_display(top, root)}\0missing"]
    walk(top, "")
    return entries


def _file_entry(role: str, path: Path | str | None, root: str | None, session: LoadSession | None) -> list[str]:
    if path is None:
        return [f"{role}\0none"]
    return [f"{role}\0{_display(path, root)}\0{file_digest(path, session)}"]


def image_version(
    kernel: str, requirements_file: Path | None, dockerfile: Path | None, session: LoadSession | None = None
) -> str:
    """hash(kernel, requirements text, Dockerfile text): the image tag."""
    return _short(
        [
            "image-v1",
            kernel,
            file_digest(requirements_file, session) if requirements_file is not None else "no-requirements",
            file_digest(dockerfile, session) if dockerfile is not None else "no-dockerfile",
        ]
    )


def _image_version_of(
    pipeline: LoadedPipeline, step_name: str, paths: ProjectPaths, session: LoadSession | None
) -> str:
    """The version of the image the step `step_name` is or runs in."""
    image = image_files(pipeline, paths, step_name)
    return image_version(image.kernel, image.requirements_file, image.dockerfile, session)


def _step_config_json(pipeline: LoadedPipeline, step: Any) -> str:
    # pydantic's JSON (fields in schema order, mappings in file order): fast at load time
    dump = step.model_dump_json(by_alias=True, exclude={"upstream_task_name"})
    cfg = pipeline.config
    context: dict[str, Any] = {"kind": step.kind.value}
    for key in step.pipeline_keys:
        context[key] = getattr(cfg, "schema_" if key == "schema" else key)
    return dump + "\0" + repr(sorted(context.items()))


def _file_entries(files: StepFiles | None, root: str | None, session: LoadSession | None) -> list[str]:
    if files is None:
        return ["files\0none"]
    entries: list[str] = []
    entries += _file_entry("main", getattr(files, "main", None), root, session)
    entries += _file_entry("parameters", getattr(files, "parameter_file", None), root, session)
    entries += _file_entry("requirements", getattr(files, "requirements_file", None), root, session)
    lib_dir = getattr(files, "lib_dir", None)
    entries += _tree_entries("lib", lib_dir, root, session) if lib_dir is not None else ["lib\0none"]
    for role in ("jars", "py_files", "sql_files"):
        for path in getattr(files, role, None) or ():
            entries += _file_entry(role, path, root, session)
    entries += _file_entry("dockerfile", getattr(files, "dockerfile", None), root, session)
    return entries


def step_code_version(
    pipeline: LoadedPipeline, step_name: str, paths: ProjectPaths, session: LoadSession | None = None
) -> str:
    """16 hex digits of sha256 over what defines the step (see the module doc). `session`:
    the load's session (see `file_digest`)."""
    step = pipeline.config.step(step_name)
    files = pipeline.files.get(step_name)
    root = os.path.join(os.fspath(paths.root), "") if paths is not None else None
    if isinstance(step, ContainerImageStep):
        return _image_version_of(pipeline, step_name, paths, session)
    parts = ["step-v1", _step_config_json(pipeline, step), *_file_entries(files, root, session)]
    if step.runs_in_image:
        parts.append("image\0" + _image_version_of(pipeline, step_name, paths, session))
    return _short(parts)
