"""Cross-checks of a schema-valid pipeline against itself and the model folders.

* step names unique, also once Dagster turns them into op names; every `upstream_task_name` names a step of the same pipeline
  (with a did-you-mean); no cycles (the cycle is named);
* the model folders and every file a step uses exist (`paths.resolve_step_files`);
* notebooks are valid nbformat; parameter files pass `parameters.read_parameter_file`
  (the reader a run uses);
* `templates_dict` values and SQL files are valid Jinja;
* the dry run (`check_run`), what a run in the load's environment would fail on when it
  plans the step (plan/resolve.py): the parameter file resolved for the env (its section,
  LOCAL's s3:// mapping), every templates_dict value and SQL file rendered in the sandbox
  with the env's variables for a sample window (`templates.sample_window`), SQL with the
  rendered values and `params` as `plan_sql` passes them. Nothing is run or written;
* for `DEV`/`BETA`/`PROD`: each notebook and Glue step has a model_bucket for that env.

Memos shared through the session whose result depends on the environment or the
variables (dry renders, resolved parameters, variables) have both in their key: one
session may load several environments.

Every error points at the config key at fault (file, line, key path); a problem inside
a notebook or parameter file is reported at the key that names the file, and its message
names that file and, for JSON, the line in it.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml_pipelines.config import values
from ml_pipelines.config.errors import ConfigError, KeyPath
from ml_pipelines.config.parameters import (
    ParameterFile,
    ParameterFileError,
    ParameterProblem,
    read_parameter_file,
)
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
from ml_pipelines.config.templates import (
    SampleWindow,
    TemplateRenderError,
    render,
    sample_window,
    template_context,
    template_syntax_error,
)
from ml_pipelines.config.text import NotUtf8Error, read_text
from ml_pipelines.config.variables import Variables, VariablesError, load_variables
from ml_pipelines.config.yaml_loader import YamlDocument


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
def _parameter_message(rel: str, problem: ParameterProblem) -> str:
    where = f"{rel}:{problem.line}" if problem.line else rel
    return f"parameter file {where}: {problem.message}"


def parameter_file_problems(path: Path, rel: str) -> list[str]:
    """What is wrong with a parameter file itself (empty list: nothing), as messages that
    name it by `rel`: `parameters.read_parameter_file`'s problems, the rules a run applies."""
    return [_parameter_message(rel, p) for p in read_parameter_file(path).problems]


def notebook_problems(path: Path, rel: str) -> list[str]:
    import nbformat

    try:
        text = read_text(path, what="notebook", name=rel)
    except NotUtf8Error as exc:
        return [str(exc)]
    except OSError as exc:
        return [f"notebook {rel} cannot be read: {exc}"]
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return [f"notebook {rel}:{exc.lineno}: not a Jupyter notebook (invalid JSON: {exc.msg})"]
    except RecursionError:
        return [f"notebook {rel}: not a Jupyter notebook (its JSON is nested too deeply)"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            notebook = nbformat.reads(text, as_version=4)
            nbformat.validate(notebook)
    except Exception as exc:  # nbformat raises several kinds; all mean "not a valid notebook"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [f"notebook {rel} is not a valid Jupyter notebook: {first[:200]}"]
    return []


@dataclass(frozen=True)
class _SqlFile:
    text: str | None  # None when it cannot be read
    problem: str | None  # unreadable, or a template syntax error


def _read_sql(path: Path, rel: str) -> _SqlFile:
    try:
        text = read_text(path, what="SQL file", name=rel)
    except NotUtf8Error as exc:
        return _SqlFile(None, str(exc))
    except OSError as exc:
        return _SqlFile(None, f"SQL file {rel} cannot be read: {exc}")
    problem = template_syntax_error(text)
    return _SqlFile(text, f"SQL file {rel}: template syntax error: {problem}" if problem else None)


# -- the dry run: what a run in the load's environment would resolve and render --------------
def load_env_variables(paths: ProjectPaths, env: str, session: LoadSession) -> Variables | VariablesError:
    """The pipeline variables of `env` (variables.yml and ML_PIPELINES_VAR_*), read once
    per load and environment; the VariablesError when variables.yml cannot be used."""

    def load() -> Variables | VariablesError:
        try:
            return load_variables(paths.model_configs, env)
        except VariablesError as exc:
            return exc

    return session.once(("variables", env, os.fspath(paths.model_configs)), load)


@dataclass(frozen=True)
class _Failure:
    """A dry render's failure: TemplateRenderError's fields, without the step's name."""

    kind: str
    detail: str
    line: int | None
    multiline: bool


def _dry_render(text: str, context: dict[str, Any]) -> tuple[str | None, _Failure | None]:
    try:
        return render(text, context, where="dry run"), None
    except TemplateRenderError as exc:
        return None, _Failure(exc.kind, exc.detail, exc.line, exc.multiline)


@dataclass(frozen=True, eq=False)
class _DryRun:
    env: str
    variables: Variables | None  # None: variables.yml is broken (reported once per load)
    variables_key: str  # the variables' values as JSON text: part of every render memo's key
    window: SampleWindow
    storage_root: Path  # LOCAL maps s3:// parameter values under it; the result is thrown away

    @classmethod
    def of(cls, paths: ProjectPaths, pipeline: PipelineConfig, env: str, session: LoadSession) -> _DryRun:
        """The dry run of `pipeline` in `env`: one per (env, variables, sample window) per load."""
        schedule, start_date = pipeline.schedule_interval, pipeline.default_args.start_date
        folder = os.fspath(paths.model_configs)

        def make() -> _DryRun:
            variables = load_env_variables(paths, env, session)
            if isinstance(variables, VariablesError):
                return cls(env, None, "", sample_window(schedule, start_date), Path())
            key = json.dumps(variables.values, sort_keys=True, default=str)
            root = paths.root / ".ml_pipelines" / "storage"
            return cls(env, variables, key, sample_window(schedule, start_date), root)

        return session.once(("dry run", env, folder, schedule, start_date), make)

    @functools.cached_property
    def base_context(self) -> dict[str, Any]:
        return template_context(self.window, self.env, self.variables or {})

    def context(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The template context of a run (not to be changed); `extra` on top."""
        return {**self.base_context, **extra} if extra else self.base_context

    def detail(self, failure: _Failure | TemplateRenderError, rel: Callable[[Path], str]) -> str:
        """The failure's detail as the load reports it."""
        detail = failure.detail
        source = self.variables.source if self.variables is not None else None
        if failure.kind == "variable" and source is not None:
            detail = detail.replace(str(source), rel(source))
        if failure.kind == "error":  # a macro's failure may depend on the date
            detail += f" (rendered at load for {self.env} with ds = {self.window.start:%Y-%m-%d})"
        return detail


def render_failure_message(
    failure: _Failure | TemplateRenderError, *, sql_file: str | None = None, detail: str | None = None
) -> str:
    """The message of a template that failed to render, for the config key that holds it:
    a SQL file's names the file (`sql_file`, as shown) and the line in it; a templates_dict
    value's gives the line when the value has several. `detail` overrides the failure's."""
    detail = failure.detail if detail is None else detail
    if sql_file is not None:
        where = f"SQL file {sql_file}, line {failure.line}" if failure.line else f"SQL file {sql_file}"
        return f"{where}: {detail}"
    if failure.multiline and failure.line:
        return f"line {failure.line}: {detail}"
    return detail


# -- the checks --------------------------------------------------------------------------
def op_name(pipeline_id: str, step_name: str) -> str:
    """The Dagster op name of a step: `AssetKey([pipeline_id, step_name]).to_python_identifier()`,
    which reads '-' and '.' as '_'."""
    return f"{pipeline_id}__{step_name}".replace("-", "_").replace(".", "_")


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
        self.check_op_names(first)
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

    def check_op_names(self, first: dict[str, int]) -> None:
        """Step names that Dagster turns into the same op name (`AssetKey.to_python_identifier`
        reads '-' and '.' as '_'): the code location could not hold both."""
        parts = [str(self.raw.get(k, "")).strip() for k in ("domain", "sub_domain", "action")]
        pipeline_id = "_".join(parts) if all(parts) else None
        seen: dict[str, str] = {}
        for name, i in first.items():
            op = op_name("", name).removeprefix("__")
            if op not in seen:
                seen[op] = name
                continue
            other = seen[op]
            shown = op_name(pipeline_id, name) if pipeline_id else op
            line = self.doc.positions.line(self.prefix + self.task_path(first[other]))
            self.error(
                self.task_path(i) + ("name",),
                f"step names {other!r} (tasks[{first[other]}], line {line}) and {name!r} both become op name "
                f"{shown!r} in Dagster ('-' is read as '_'); rename one",
            )

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

    def param_where(self, index: int, step: StepBase) -> KeyPath:
        """The key a parameter file problem is reported at: param_file_name where it is
        written, else the step (an implicit parameters.json)."""
        field = self.param_field(step)
        return self.task_path(index) + field if self.written(index, field) else self.task_path(index)

    def parameter_file(self, path: Path) -> ParameterFile:
        return self.session.from_file("parameter file", path, lambda: read_parameter_file(path))

    def syntax_problem(self, text: str) -> str | None:
        return self.session.once(("template syntax error", text), lambda: template_syntax_error(text))

    def sql_file(self, path: Path) -> _SqlFile:
        return self.session.from_file("sql file", path, lambda: _read_sql(path, self.paths.rel(path)))

    def check_contents(self, index: int, step: StepBase, files: StepFiles) -> None:
        task = self.task_path(index)
        rel = self.paths.rel
        if isinstance(step, NotebookStep) and files.main is not None:
            for message in self.session.from_file(
                "notebook problems", files.main, lambda: notebook_problems(files.main, rel(files.main))
            ):
                self.error(task + ("notebook_name",), message)
        if files.parameter_file is not None:
            for problem in self.parameter_file(files.parameter_file).problems:
                self.error(self.param_where(index, step), _parameter_message(rel(files.parameter_file), problem))
        for key, text in step.templates_dict.items():
            problem = self.syntax_problem(text)
            if problem:
                self.error(task + ("templates_dict", key), f"template syntax error: {problem}")
        if isinstance(step, SqlStep):
            for i, sql in enumerate(files.sql_files):
                problem = self.sql_file(sql).problem
                if problem:
                    self.error(task + ("sql_file_names", i), problem)

    # -- what a run in the load's environment would do ------------------------------------
    def check_run(self, index: int, step: StepBase, files: StepFiles, run: _DryRun) -> None:
        """Resolve the step's parameters and render its templates as a run in `run.env`
        would (plan/resolve.py), for a sample window; report what would fail."""
        if isinstance(step, NotebookStep) and not step.notebook_name.strip():
            return  # nothing runs
        task = self.task_path(index)
        rel = self.paths.rel
        parameters: dict[str, Any] | None = {}
        if files.parameter_file is not None:
            parameters = self.env_parameters(index, step, files.parameter_file, run)
        if run.variables is None:
            return  # variables.yml is broken: reported once for the load
        rendered: dict[str, str] = {}
        for key, text in step.templates_dict.items():
            if self.syntax_problem(text):
                rendered[key] = ""
                continue
            value, failure = self.session.once(
                ("dry render", run.env, run.variables_key, run.window, text),
                lambda text=text: _dry_render(text, run.context()),
            )
            if failure is not None:
                self.error(
                    task + ("templates_dict", key), render_failure_message(failure, detail=run.detail(failure, rel))
                )
            rendered[key] = value if value is not None else ""
        if not isinstance(step, SqlStep) or parameters is None:
            return
        # plan_sql: the rendered templates_dict at top level, params = file parameters + templates;
        # the file parameters follow from the file and the environment (both in the key)
        extra = {**rendered, "params": {**parameters, **rendered}}
        param_file = os.fspath(files.parameter_file) if files.parameter_file is not None else None
        for i, sql in enumerate(files.sql_files):
            sql_file = self.sql_file(sql)
            if sql_file.text is None or sql_file.problem:
                continue
            key = ("dry render sql", run.env, run.variables_key, run.window, os.fspath(sql), param_file)
            _, failure = self.session.once(
                (*key, tuple(rendered.items())), lambda text=sql_file.text: _dry_render(text, run.context(extra))
            )
            if failure is not None:
                message = render_failure_message(failure, sql_file=rel(sql), detail=run.detail(failure, rel))
                self.error(task + ("sql_file_names", i), message)

    def env_parameters(self, index: int, step: StepBase, path: Path, run: _DryRun) -> dict[str, Any] | None:
        """The step's file parameters in `run.env` (None, with the error reported, when a
        run could not resolve them; problems of the file itself are check_contents')."""
        parsed = self.parameter_file(path)
        if parsed.problems:
            return None
        problem = parsed.env_problem(run.env)
        if problem is not None:
            self.error(self.param_where(index, step), _parameter_message(self.paths.rel(path), problem))
            return None

        def resolve() -> dict[str, Any] | str:
            try:
                return parsed.resolve(run.env, run.storage_root)
            except ParameterFileError as exc:
                return exc.detail

        resolved = self.session.once(("parameters", run.env, run.storage_root, os.fspath(path)), resolve)
        if isinstance(resolved, str):
            line = ParameterProblem(None, resolved)
            self.error(self.param_where(index, step), _parameter_message(self.paths.rel(path), line))
            return None
        return resolved

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

    Returns the files of each step (by step name) and the errors found. `env`: the
    environment a run would use: its parameter-file section, variables and buckets are
    checked, and every template is rendered as a run would (`check_run`). `session`: the
    load's session, shared by its pipelines (default: a fresh one).
    """
    session = session if session is not None else LoadSession()
    env = env.upper()
    checker = _Checker(paths, pipeline, doc, prefix, session)
    checker.check_graph()
    run = _DryRun.of(paths, pipeline, env, session)
    files: dict[str, StepFiles] = {}
    for i, step in enumerate(pipeline.tasks):
        step_files = checker.step_files(i, step)
        if step_files is None:
            continue
        files.setdefault(step.name, step_files)
        checker.check_contents(i, step, step_files)
        checker.check_run(i, step, step_files, run)
    checker.check_env(env)
    return files, checker.errors


__all__ = [
    "check_graph",
    "check_pipeline",
    "did_you_mean",
    "load_env_variables",
    "notebook_problems",
    "parameter_file_problems",
    "render_failure_message",
]
