"""Cross-checks of a schema-valid pipeline against itself and the model folders.

* step names unique; every `upstream_task_name` names a step of the same pipeline
  (with a did-you-mean); no cycles (the cycle is named);
* the model folders and every file a step uses exist (`paths.resolve_step_files`);
* notebooks are valid nbformat; parameter files are JSON objects with known sections;
* `templates_dict` values and SQL files are valid Jinja (syntax only);
* for `DEV`/`BETA`/`PROD`: each notebook and Glue step has a model_bucket for that env.

Every error points at the config key at fault (file, line, key path); a problem inside
a notebook or parameter file is reported at the key that names the file, and its message
names that file and, for JSON, the line in it.
"""

from __future__ import annotations

import difflib
import json
import warnings
from pathlib import Path
from typing import Any

from ml_pipelines.config import values
from ml_pipelines.config.errors import ConfigError, KeyPath
from ml_pipelines.config.parameters import json_key_line
from ml_pipelines.config.paths import ProjectPaths, StepFiles, StepFilesError, resolve_step_files
from ml_pipelines.config.schema import (
    CLOUD_ENVIRONMENTS,
    GlueStep,
    NotebookStep,
    PipelineConfig,
    SqlStep,
    StepBase,
)
from ml_pipelines.config.session import LoadSession
from ml_pipelines.config.templates import template_syntax_error
from ml_pipelines.config.yaml_loader import YamlDocument

PARAMETER_SECTIONS = ("DEV", "BETA", "PROD", "COMMON", "LOCAL")
ENV_SECTIONS = ("DEV", "BETA", "PROD")


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """' did you mean 'x'?' (with the leading space) or ''."""
    if not word:
        return ""
    by_lower = {c.lower(): c for c in choices}
    if word.lower() in by_lower and by_lower[word.lower()] != word:
        return f"; did you mean {by_lower[word.lower()]!r}?"
    match = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[match[0]]!r}?" if match else ""


# -- file contents ---------------------------------------------------------------------
def parameter_file_problems(path: Path, rel: str) -> list[str]:
    """What is wrong with a parameter file (empty list: nothing)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"parameter file {rel} cannot be read: {exc}"]
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        return [f"parameter file {rel}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})"]
    if not isinstance(data, dict):
        return [f"parameter file {rel}: must be a JSON object with sections {', '.join(PARAMETER_SECTIONS)}"]
    problems = []
    for key in dict.fromkeys(duplicates):
        problems.append(f"parameter file {rel}:{json_key_line(text, key) or 1}: key {key!r} is written twice")
    for section, body in data.items():
        line = json_key_line(text, section) or 1
        if section not in PARAMETER_SECTIONS:
            problems.append(
                f"parameter file {rel}:{line}: unknown section {section!r}{did_you_mean(section, PARAMETER_SECTIONS)}"
                f" (allowed: {', '.join(PARAMETER_SECTIONS)})"
            )
            continue
        if not isinstance(body, dict):
            problems.append(f"parameter file {rel}:{line}: section {section} must be an object of parameters")
            continue
        for key in body:
            if key.startswith("-"):
                problems.append(
                    f"parameter file {rel}:{json_key_line(text, key) or line}: {section}.{key}: "
                    "write parameter names without leading '-'; '--' is added when they are passed"
                )
    present = [s for s in ENV_SECTIONS if s in data]
    if present and len(present) < len(ENV_SECTIONS):
        missing = [s for s in ENV_SECTIONS if s not in data]
        problems.append(
            f"parameter file {rel}: has section(s) {', '.join(present)} but not {', '.join(missing)}; "
            "give every environment its section (an empty {} is fine)"
        )
    if not present and "COMMON" not in data:
        problems.append(
            f"parameter file {rel}: no parameter sections; write COMMON and/or DEV, BETA, PROD (LOCAL optional)"
        )
    return problems


def notebook_problems(path: Path, rel: str) -> list[str]:
    import nbformat

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"notebook {rel} cannot be read: {exc}"]
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return [f"notebook {rel}:{exc.lineno}: not a Jupyter notebook (invalid JSON: {exc.msg})"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            notebook = nbformat.reads(text, as_version=4)
            nbformat.validate(notebook)
    except Exception as exc:  # nbformat raises several kinds; all mean "not a valid notebook"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [f"notebook {rel} is not a valid Jupyter notebook: {first[:200]}"]
    return []


# -- the checks --------------------------------------------------------------------------
class _Checker:
    def __init__(
        self, paths: ProjectPaths, pipeline: PipelineConfig, doc: YamlDocument, prefix: KeyPath, session: LoadSession
    ):
        self.paths = paths
        self.pipeline = pipeline
        self.doc = doc
        self.prefix = tuple(prefix)
        self.session = session
        self.errors: list[ConfigError] = []
        raw = doc.data
        for part in self.prefix:
            raw = raw.get(part) if isinstance(raw, dict) else None
        self.raw = raw if isinstance(raw, dict) else {}
        raw_tasks = self.raw.get("tasks")
        self.raw_tasks = raw_tasks if isinstance(raw_tasks, list) else []

    def error(self, path: KeyPath, message: str, prefer_key: bool = False) -> None:
        self.errors.append(self.doc.error_at(self.prefix + tuple(path), message, prefer_key=prefer_key))

    def task_path(self, index: int) -> KeyPath:
        return ("tasks", index)

    def raw_task(self, index: int) -> dict[str, Any]:
        item = self.raw_tasks[index] if index < len(self.raw_tasks) else None
        return item if isinstance(item, dict) else {}

    def written(self, index: int, field: tuple[str, ...]) -> bool:
        """Whether the task has `field` written with a non-blank value."""
        node: Any = self.raw_task(index)
        for part in field:
            node = node.get(part) if isinstance(node, dict) else None
        return node is not None and str(node).strip().lower() not in ("", "none", "null")

    # -- graph --------------------------------------------------------------------------
    def raw_steps(self) -> list[tuple[int, str, list[str]]]:
        """(index, name, upstream names) of every task with a usable name, from the raw YAML.

        The graph is checked on the raw data so that its errors are reported even when
        the schema rejected other parts of the pipeline.
        """
        out = []
        for i, item in enumerate(self.raw_tasks):
            if not isinstance(item, dict) or not isinstance(item.get("name"), (str, int)):
                continue
            try:
                upstream = values.parse_comma_list(item.get("upstream_task_name"))
            except ValueError:
                upstream = []
            out.append((i, str(item["name"]), upstream))
        return out

    def check_graph(self) -> None:
        if "tasks" in self.raw and not self.raw_tasks and isinstance(self.raw.get("tasks"), (list, type(None))):
            self.error(("tasks",), "a pipeline needs at least one task", prefer_key=True)
            return
        if "tasks" not in self.raw:
            self.error(("tasks",), "missing required key 'tasks': a pipeline needs at least one task", prefer_key=True)
            return
        steps = self.raw_steps()
        first: dict[str, int] = {}
        for i, name, _ in steps:
            if name in first:
                j = first[name]
                self.error(
                    self.task_path(i) + ("name",),
                    f"duplicate step name {name!r} (also tasks[{j}], line "
                    f"{self.doc.positions.line(self.prefix + self.task_path(j))}); step names must be unique",
                )
            else:
                first[name] = i
        names = list(first)
        edges: dict[str, list[str]] = {name: [] for name in names}
        for i, name, upstreams in steps:
            raw_up = self.raw_task(i).get("upstream_task_name")
            seen: set[str] = set()
            for k, upstream in enumerate(upstreams):
                where = self.task_path(i) + (
                    ("upstream_task_name", k) if isinstance(raw_up, list) else ("upstream_task_name",)
                )
                if upstream in seen:
                    self.error(where, f"{upstream!r} is listed twice")
                    continue
                seen.add(upstream)
                if upstream == name:
                    self.error(where, f"step {name!r} lists itself as upstream (a cycle of one)")
                elif upstream not in first:
                    others = [n for n in names if n != name]
                    self.error(
                        where,
                        f"unknown upstream step {upstream!r}{did_you_mean(upstream, others)}"
                        f" (steps of this pipeline: {', '.join(others) or 'none'})",
                    )
                elif first[name] == i:
                    edges[name].append(upstream)
        self.check_cycles(names, edges, first)

    def check_cycles(self, names: list[str], edges: dict[str, list[str]], first: dict[str, int]) -> None:
        state: dict[str, int] = {}  # 1 = on the stack, 2 = done
        stack: list[str] = []
        reported: set[frozenset[str]] = set()

        def visit(name: str) -> None:
            state[name] = 1
            stack.append(name)
            for upstream in edges.get(name, []):
                if state.get(upstream) == 1:
                    cycle = stack[stack.index(upstream) :]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        start = min(cycle, key=lambda n: first[n])
                        pos = cycle.index(start)
                        ordered = cycle[pos:] + cycle[:pos] + [start]
                        self.error(
                            self.task_path(first[start]) + ("upstream_task_name",),
                            "upstream cycle: " + " -> ".join(ordered) + " (each step waits for the next)",
                        )
                elif upstream not in state:
                    visit(upstream)  # noqa: F821 - itself; deleted after the walk (below)
            stack.pop()
            state[name] = 2

        try:
            for name in names:
                if name not in state:
                    visit(name)
        finally:
            # `visit` refers to itself through its closure: a reference cycle that would
            # keep this checker, its document and every position alive until the
            # collector's next full pass (a large share of a load's time). Break it.
            del visit

    # -- files ----------------------------------------------------------------------------
    def step_files(self, index: int, step: StepBase) -> StepFiles | None:
        try:
            return resolve_step_files(self.paths, self.pipeline, step, self.session.fs)
        except StepFilesError as exc:
            for problem in exc.problems:
                if problem.pipeline_level:
                    self.error(problem.field, problem.message, prefer_key=True)
                else:
                    self.error(self.task_path(index) + problem.field, problem.message)
            return None

    def param_field(self, step: StepBase) -> tuple[str, ...]:
        return ("Details", "param_file_name") if isinstance(step, GlueStep) else ("param_file_name",)

    def check_contents(self, index: int, step: StepBase, files: StepFiles) -> None:
        task = self.task_path(index)
        rel = self.paths.rel
        from_file = self.session.from_file
        if isinstance(step, NotebookStep) and files.main is not None:
            for message in from_file(
                "notebook problems", files.main, lambda: notebook_problems(files.main, rel(files.main))
            ):
                self.error(task + ("notebook_name",), message)
        if files.parameter_file is not None:
            field = self.param_field(step)
            where = task + field if self.written(index, field) else task
            path = files.parameter_file
            for message in from_file("parameter file problems", path, lambda: parameter_file_problems(path, rel(path))):
                self.error(where, message)
        for key, text in step.templates_dict.items():
            problem = self.session.once(("template syntax error", text), lambda text=text: template_syntax_error(text))
            if problem:
                self.error(task + ("templates_dict", key), f"template syntax error: {problem}")
        if isinstance(step, SqlStep):
            for i, sql in enumerate(files.sql_files):

                def sql_problem(sql: Path = sql) -> list[str]:
                    try:
                        text = sql.read_text(encoding="utf-8-sig")
                    except (OSError, UnicodeDecodeError) as exc:
                        return [f"SQL file {rel(sql)} cannot be read: {exc}"]
                    problem = template_syntax_error(text)
                    return [f"SQL file {rel(sql)}: template syntax error: {problem}"] if problem else []

                for message in from_file("sql problems", sql, sql_problem):
                    self.error(task + ("sql_file_names", i), message)

    def check_env(self, env: str) -> None:
        if env not in CLOUD_ENVIRONMENTS:
            return
        for i, step in enumerate(self.pipeline.tasks):
            if isinstance(step, NotebookStep) and not step.notebook_name.strip():
                continue
            if isinstance(step, (NotebookStep, GlueStep)):
                bucket = step.BucketIOConfig.get(env)
                if bucket is None or not (bucket.model_bucket or "").strip():
                    self.error(
                        self.task_path(i) + ("BucketIOConfig", env, "model_bucket"),
                        f"no model_bucket for {env}: the step's files are stored in s3://<model_bucket>/...; "
                        f"set BucketIOConfig.{env}.model_bucket",
                    )


def check_graph(doc: YamlDocument, prefix: KeyPath) -> list[ConfigError]:
    """The upstream_task_name graph of the pipeline at `prefix` (raw YAML; no schema needed):
    duplicate step names, unknown upstream names (with a did-you-mean), cycles."""
    checker = _Checker(None, None, doc, prefix, None)  # type: ignore[arg-type]
    checker.check_graph()
    return checker.errors


def check_pipeline(
    paths: ProjectPaths,
    pipeline: PipelineConfig,
    *,
    doc: YamlDocument,
    prefix: KeyPath,
    env: str = "LOCAL",
    session: LoadSession | None = None,
) -> tuple[dict[str, StepFiles], list[ConfigError]]:
    """Cross-check one schema-valid pipeline written at `prefix` of `doc`.

    Returns the files of each step (by step name) and the errors found. `session`: the
    load's session, shared by its pipelines (default: a fresh one).
    """
    checker = _Checker(paths, pipeline, doc, prefix, session if session is not None else LoadSession())
    checker.check_graph()
    files: dict[str, StepFiles] = {}
    for i, step in enumerate(pipeline.tasks):
        step_files = checker.step_files(i, step)
        if step_files is None:
            continue
        files.setdefault(step.name, step_files)
        checker.check_contents(i, step, step_files)
    checker.check_env(env.upper())
    return files, checker.errors


__all__ = [
    "PARAMETER_SECTIONS",
    "check_graph",
    "check_pipeline",
    "did_you_mean",
    "notebook_problems",
    "parameter_file_problems",
]
