"""Config errors that point at a file, a line and a dotted key path.

Every problem the config package finds becomes one `ConfigError`; printed, it reads
`path:line: key.path: message`, the line a data scientist fixes from. List indexes are
written `tasks[2]`, followed by the task's name when it has one:
`dags.sagemaker.tasks[1](sagemaker_notebook_job_processing_script).Details.instance_count`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigError:
    """One problem in one file.

    `file` is the file the line number belongs to (absolute, or as given); `root`, when
    set, is the project dir that `__str__` prints the path relative to. `line` is
    1-based; None when no line is known. `key_path` is empty for a problem of the whole
    file (a YAML syntax error, a file too large), and `__str__` then leaves it out.
    """

    file: Path
    line: int | None
    key_path: str
    message: str
    root: Path | None = field(default=None, compare=False, repr=False)

    @property
    def display_path(self) -> str:
        return display_path(self.file, self.root)

    def __str__(self) -> str:
        where = self.display_path if self.line is None else f"{self.display_path}:{self.line}"
        if self.key_path:
            return f"{where}: {self.key_path}: {self.message}"
        return f"{where}: {self.message}"


def display_path(path: Path | str, root: Path | str | None = None) -> str:
    """`path` relative to `root` when it lies inside it (as written, else once resolved),
    else as given (POSIX slashes). A symlink is shown where it is, not where it leads."""
    path = Path(path)
    if root is not None:
        if path.is_absolute() and path.is_relative_to(root):
            return path.relative_to(root).as_posix()
        try:
            return path.resolve().relative_to(Path(root).resolve()).as_posix()
        except (ValueError, OSError):
            pass
    return path.as_posix()


def _task_label(item: Any) -> str:
    if isinstance(item, dict):
        name = item.get("name")
        if isinstance(name, str) and name.strip():
            return f"({name.strip()})"
    return ""


def format_key_path(path: Sequence[str | int], data: Any = None) -> str:
    """('dags', 'sagemaker', 'tasks', 1, 'Details') -> 'dags.sagemaker.tasks[1](name).Details'.

    `data` is the raw document the path points into: list items that are mappings with
    a `name` get it appended. Where the raw data holds a scalar but the path goes deeper
    (an index into a comma list written as one string, say), the path stops at the
    scalar: that is the text the user wrote.
    """
    out = ""
    node = data
    have_data = data is not None
    for part in path:
        if have_data and node is not None and not isinstance(node, (dict, list)):
            break
        if isinstance(part, int):
            out += f"[{part}]"
            item = node[part] if isinstance(node, list) and -len(node) <= part < len(node) else None
            out += _task_label(item)
            node = item
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def dedupe(errors: Iterable[ConfigError]) -> list[ConfigError]:
    """The errors without repeats, first occurrence kept."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for error in errors:
        key = (str(error.file), error.line, error.key_path, error.message)
        if key not in seen:
            seen.add(key)
            out.append(error)
    return out
