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

The container image's version is hash(kernel, requirements, Dockerfile text); it is
also `ContainerImagePlan.content_hash`. Requirements count with the files they pull in:
`-r`/`--requirement` and `-c`/`--constraint` lines are followed (relative to the file's
folder, recursively, each file once, at most MAX_REQUIREMENTS_DEPTH deep) while they stay
inside the project root (the nearest folder above holding `model_configs/`); a line that
leaves it, or names no file, counts as its text.

Digests do bounded work whatever a file holds: a notebook is parsed as JSON once (a file
that does not parse, nests too deeply or has cells of the wrong shape is digested by its
bytes), and `lib/` trees are walked without recursion, each folder once, following a
symlinked folder only when it stays inside the project root.

Files are named relative to the project root (moving the checkout changes nothing). Given
the load's `LoadSession`, each file is read and each `lib/` folder listed once per load,
however many steps share it, and a digest is reused from earlier loads while its file is
unchanged (the load cache); without one, every file is read on every call.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ml_pipelines.config.schema import ContainerImageStep
from ml_pipelines.plan.images import dockerfile_copies, image_files

if TYPE_CHECKING:
    from ml_pipelines.config.loader import LoadedPipeline
    from ml_pipelines.config.paths import ProjectPaths, StepFiles
    from ml_pipelines.config.session import LoadSession

VERSION_LENGTH = 16
MAX_REQUIREMENTS_DEPTH = 20  # nested `-r`/`-c` files followed at most this deep
_IGNORED_PARTS = frozenset({"__pycache__", ".ipynb_checkpoints", ".DS_Store"})
_IGNORED_SUFFIXES = (".pyc", ".pyo")


def _short(parts: Iterable[str]) -> str:
    """16 hex digits of sha256 over the parts, one per line (parts hold no raw newline:
    config JSON escapes them, file entries are name + digest)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:VERSION_LENGTH]


def _notebook_digest(raw: bytes) -> str:
    """Digest of a notebook's cell types and sources; raw bytes when it is not JSON, nests
    deeper than the JSON parser allows, or its cells are not text (nothing here recurses
    into the file's structure)."""
    try:
        cells = json.loads(raw).get("cells", [])
        content = [_cell_text(cell) for cell in cells]
    except (ValueError, AttributeError, TypeError, RecursionError):
        return hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


def _cell_text(cell: Any) -> list[str | None]:
    """[cell type, source] of one cell; TypeError unless both are text (or source a list of text)."""
    kind, source = cell.get("cell_type"), cell.get("source", "")
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        source = "".join(source)
    if not isinstance(source, str) or not (kind is None or isinstance(kind, str)):
        raise TypeError("not a notebook cell")
    return [kind, source]


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


def _inside(path: str, root: str | None) -> bool:
    return root is None or os.path.join(os.path.realpath(path), "").startswith(os.path.realpath(root))


def _walk_tree(role: str, top: str, root: str | None, session: LoadSession | None) -> list[str]:
    """Depth first in name order, without recursion (deep folders reach no recursion limit);
    each real folder listed once, so symlink loops end; a symlinked folder is followed only
    inside the project root."""
    if not os.path.isdir(top):
        return [f"{role}\0{_display(top, root)}\0missing"]
    entries: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack = [(iter(_listing(top, seen)), "")]
    while stack:
        items, prefix = stack[-1]
        item = next(items, None)
        if item is None:
            stack.pop()
        elif item.name in _IGNORED_PARTS:
            continue
        elif item.is_dir():
            if not item.is_symlink() or _inside(item.path, root):
                stack.append((iter(_listing(item.path, seen)), f"{prefix}{item.name}/"))
        elif item.is_file() and not item.name.endswith(_IGNORED_SUFFIXES):
            entries.append(f"{role}\0{prefix}{item.name}\0{file_digest(item.path, session)}")
    return entries


def _listing(folder: str, seen: set[tuple[int, int]]) -> list[os.DirEntry]:
    """`folder`'s entries by name; none when it was listed before (a symlink loop) or cannot be read."""
    try:
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in seen:
            return []
        seen.add((info.st_dev, info.st_ino))
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:
        return []


def _file_entry(role: str, path: Path | str | None, root: str | None, session: LoadSession | None) -> list[str]:
    if path is None:
        return [f"{role}\0none"]
    return [f"{role}\0{_display(path, root)}\0{file_digest(path, session)}"]


# pip's options naming another file: `-r x`, `-rx`, `--requirement=x`, `--constraint x`
_INCLUDE = re.compile(r"^(?:-r|-c|--requirement|--constraint)(?:\s*=\s*|\s+|(?=[^\s=-]))(\S+)$")


def _requirements_file(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(digest, [(line, named file)]) of a requirements file's content, for its `-r`/`-c` lines."""
    try:
        with open(text, "rb") as handle:
            raw = handle.read()
    except OSError:
        return "missing", []
    includes = []
    for line in raw.decode("utf-8", errors="replace").splitlines():
        line = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
        match = _INCLUDE.match(line)
        if match:
            includes.append((line, match.group(1)))
    return hashlib.sha256(raw).hexdigest(), includes


def _project_root_of(folder: str, session: LoadSession | None) -> str:
    """The nearest folder at or above `folder` holding `model_configs/`, else `folder`."""
    current = folder
    while True:
        probe = os.path.join(current, "model_configs")
        found = session.once(("is dir", probe), lambda p=probe: os.path.isdir(p)) if session else os.path.isdir(probe)
        if found:
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return folder
        current = parent


def requirements_digest(requirements_file: Path | str, session: LoadSession | None = None) -> str:
    """sha256 of a requirements file with the files its `-r`/`-c` lines name (see the module
    doc); "missing" if absent. Also what LOCAL envs should be keyed by."""
    top = os.path.realpath(os.fspath(requirements_file))
    root = os.path.join(_project_root_of(os.path.dirname(top), session), "")
    done: dict[str, str] = {}

    def read(path: str) -> tuple[str, list[tuple[str, str]]]:
        return (
            session.from_file("requirements", path, lambda: _requirements_file(path))
            if session
            else _requirements_file(path)
        )

    def digest(path: str, depth: int, stack: frozenset[str]) -> str:
        if path in done:
            return done[path]
        own, includes = read(path)
        parts = [own]
        for line, name in includes:
            target = os.path.realpath(os.path.join(os.path.dirname(path), name))
            if not target.startswith(root) or not os.path.isfile(target):
                parts.append(f"text\0{line}")
            elif target in stack or depth >= MAX_REQUIREMENTS_DEPTH:
                parts.append(f"not followed\0{line}")
            else:
                parts.append(f"file\0{line}\0{digest(target, depth + 1, stack | {target})}")
        done[path] = own if len(parts) == 1 else hashlib.sha256("\n".join(parts).encode()).hexdigest()
        return done[path]

    return digest(top, 0, frozenset({top}))


def image_version(
    kernel: str, requirements_file: Path | None, dockerfile: Path | None, session: LoadSession | None = None
) -> str:
    """hash(kernel, requirements with the files they include, Dockerfile text and the files it
    COPYs from `containers/`): the image tag."""
    copied: list[str] = []
    if dockerfile is not None:

        def copies() -> dict[str, Path | None]:
            try:
                return dockerfile_copies(dockerfile)
            except OSError:  # no Dockerfile: "missing" below
                return {}

        found = session.once(("dockerfile copies", os.fspath(dockerfile)), copies) if session else copies()
        copied = [f"{name}={file_digest(p, session) if p else 'missing'}" for name, p in sorted(found.items())]
    return _short(
        [
            "image-v2",
            kernel,
            requirements_digest(requirements_file, session) if requirements_file is not None else "no-requirements",
            file_digest(dockerfile, session) if dockerfile is not None else "no-dockerfile",
            *copied,
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
    requirements = getattr(files, "requirements_file", None)
    if requirements is None:
        entries.append("requirements\0none")
    else:
        entries.append(f"requirements\0{_display(requirements, root)}\0{requirements_digest(requirements, session)}")
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
