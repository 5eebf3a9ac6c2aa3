"""Safe YAML loading that remembers where everything was written.

`load_yaml(path, root=...)` composes the file with PyYAML's safe composer (libyaml's
when available) and builds plain Python data from the node graph itself, so that:

* every mapping key, mapping value and sequence item has its file and line recorded,
  keyed by its path from the document root (`('dags', 'sagemaker', 'tasks', 1)`);
* `!include <relative path>` is replaced by the included file's data; paths are
  relative to the including file, may nest, must stay inside `include_root` (the
  loader's: model_configs/) once symlinks are resolved, and a cycle is reported with its
  chain (a.yml -> b.yml -> a.yml);
* duplicate keys in a mapping are errors (YAML would silently keep the last one);
* mapping keys are always the text the user wrote (`no:` stays "no", not False);
* only plain YAML types are built (no Python objects), a file is at most
  `MAX_FILE_BYTES`, and a document (includes and alias expansions counted) at most
  `MAX_NODES` nodes: an alias bomb stops there instead of eating the memory.

Nothing raises on bad input: problems come back in `YamlDocument.issues`. A problem that
leaves no usable data (syntax error, oversize file, alias bomb) sets `fatal`.

A project load reads hundreds of configs that `!include` the same fragments: pass the
load's `YamlMemo` (its `LoadSession.yaml`) to every `load_yaml` of that load and each
fragment is read and composed once (the memo lives as long as the load, so the next load
reads edited files afresh).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ml_pipelines.config.errors import ConfigError, KeyPath, display_path, format_key_path
from ml_pipelines.config.text import NotUtf8Error, read_text

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 100
MAX_INCLUDE_DEPTH = 20
INCLUDE_TAG = "!include"

_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_YAML + t for t in ("null", "bool", "int", "float", "str", "timestamp")}
_SEQ_TAG = _YAML + "seq"
_MAP_TAG = _YAML + "map"
_MERGE_TAG = _YAML + "merge"
_STR_TAG = _YAML + "str"
_NULL_TAG = _YAML + "null"
_SPECIAL_KEY_TAGS = frozenset({_MERGE_TAG, INCLUDE_TAG})

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Composer(_BaseLoader):  # type: ignore[misc, valid-type]
    """Composes nodes only; construction is ours.

    The composer asks `resolve` for the tag of every node. The safe loader has no path
    resolvers, so a plain scalar's tag depends on its text alone: it is remembered in
    `tags` (the load's `YamlMemo.tags`) instead of running the implicit resolvers' regexes
    again for every repeated key and value. Quoted scalars are text, collections maps or
    sequences, as in `Resolver.resolve`.
    """

    def __init__(self, stream: str, tags: dict[str, str] | None = None):
        super().__init__(stream)
        self.tags = {} if tags is None else tags

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                tag = self.tags.get(value)
                if tag is None:
                    tag = self.tags[value] = _BaseLoader.resolve(self, kind, value, implicit)
                return tag
            return _STR_TAG
        return _MAP_TAG if kind is MappingNode else _SEQ_TAG

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass  # no path resolvers: nothing to track

    def ascend_resolver(self) -> None:
        pass


@dataclass(frozen=True)
class Mark:
    """Where something was written: a file and a 1-based line."""

    file: Path
    line: int


class Positions:
    """Marks by path: `keys` for mapping keys, `values` for values and list items.

    While a document is built, a position in the document's own file (`file`) is stored
    as its bare line number, one in an included file as a Mark: a config has a position
    per key and value, and most of them are never asked for (only errors and the line
    of each pipeline are). `keys` and `values` hand out Marks only (converted on first
    use); `find` converts just the one it returns.
    """

    __hash__ = None  # type: ignore[assignment]  # mutable, so not hashable

    def __init__(
        self,
        keys: dict[KeyPath, Mark] | None = None,
        values: dict[KeyPath, Mark] | None = None,
        *,
        file: Path | None = None,
    ):
        # Stored: a Mark, or the line number (int) of a position in `file`.
        self._keys: dict[KeyPath, Any] = {} if keys is None else keys
        self._values: dict[KeyPath, Any] = {} if values is None else values
        self._file = file
        self._lines_left = file is not None

    @property
    def keys(self) -> dict[KeyPath, Mark]:
        self._to_marks()
        return self._keys

    @property
    def values(self) -> dict[KeyPath, Mark]:
        self._to_marks()
        return self._values

    def _to_marks(self) -> None:
        """Replace the stored line numbers by Marks (one Mark per line), in place."""
        if not self._lines_left:
            return
        self._lines_left = False
        by_line: dict[int, Mark] = {}
        for stored in (self._keys, self._values):
            for path, where in stored.items():
                if where.__class__ is int:
                    mark = by_line.get(where)
                    if mark is None:
                        mark = by_line[where] = Mark(self._file, where)
                    stored[path] = mark

    def find(self, path: KeyPath, prefer_key: bool = False) -> Mark | None:
        """The mark of `path` (its key's or its value's), else of the nearest parent.

        A parent is located by its key (`Details:`) where it has one: that is the line
        the missing or misplaced part belongs under.
        """
        path = tuple(path)
        keys, values = self._keys, self._values
        while True:
            first, second = (keys, values) if prefer_key else (values, keys)
            where = first.get(path) or second.get(path)
            if where is not None:
                return Mark(self._file, where) if where.__class__ is int else where
            if not path:
                return None
            path = path[:-1]
            prefer_key = True

    def line(self, path: KeyPath, prefer_key: bool = False) -> int | None:
        mark = self.find(path, prefer_key)
        return mark.line if mark else None

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.keys, self.values) == (other.keys, other.values)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(keys={self.keys!r}, values={self.values!r})"


@dataclass(frozen=True)
class YamlIssue:
    path: KeyPath  # where in the document; () for the whole file
    mark: Mark
    message: str


@dataclass
class YamlDocument:
    file: Path
    root: Path
    data: Any = None
    positions: Positions = field(default_factory=Positions)
    issues: list[YamlIssue] = field(default_factory=list)
    fatal: bool = False
    includes: list[Path] = field(default_factory=list)  # every file pulled in

    def error_at(self, path: KeyPath, message: str, *, prefer_key: bool = False) -> ConfigError:
        """A ConfigError for `path`: the file and line where it (or its nearest parent) was written."""
        mark = self.positions.find(path, prefer_key) or Mark(self.file, 1)
        return ConfigError(mark.file, mark.line, format_key_path(path, self.data), message, root=self.root)

    def issue_errors(self) -> list[ConfigError]:
        return [self._issue_error(issue) for issue in self.issues]

    def _issue_error(self, issue: YamlIssue) -> ConfigError:
        return ConfigError(
            issue.mark.file, issue.mark.line, format_key_path(issue.path, self.data), issue.message, root=self.root
        )

    def errors_under(self, prefix: KeyPath) -> list[ConfigError]:
        """Errors of the issues at or below `prefix`."""
        n = len(prefix)
        return [self._issue_error(i) for i in self.issues if tuple(i.path[:n]) == tuple(prefix)]

    @property
    def errors(self) -> list[ConfigError]:
        return self.issue_errors()


class YamlMemo:
    """What a project load would otherwise read, compose and look up once per config file.

    One per load (the load's `LoadSession` holds it): an `!include`d file is read and
    composed once, include targets are resolved once, and an edited file is read afresh
    by the next load, which brings its own memo. The composed nodes are shared between
    documents: building never changes a node.
    """

    def __init__(self) -> None:
        self.composed: dict[Path, Node | None] = {}  # include file -> its root node (None: empty)
        self.targets: dict[tuple[Path, str], Path] = {}  # (folder, !include text) -> resolved path
        self.kinds: dict[Path, str] = {}  # resolved path -> "file", "other" or "missing"
        self.marks: dict[Path, dict[int, Mark]] = {}  # include file -> Mark by line
        self.tags: dict[str, str] = {}  # plain scalar text -> its resolved tag (see _Composer)
        self.resolved_roots: dict[Path, Path] = {}
        self.resolved_dirs: dict[Path, Path] = {}  # folder of a config file -> resolved

    def resolved_root(self, root: Path) -> Path:
        resolved = self.resolved_roots.get(root)
        if resolved is None:
            resolved = self.resolved_roots[root] = root.resolve()
        return resolved

    def real_path(self, path: Path) -> Path:
        """`path.resolve()`, resolving each folder once per load rather than once per file."""
        if path.name not in ("", ".", ".."):
            try:
                is_link = stat.S_ISLNK(os.lstat(path).st_mode)
            except OSError:
                is_link = True  # let resolve() decide
            if not is_link:
                folder = path.parent
                resolved = self.resolved_dirs.get(folder)
                if resolved is None:
                    resolved = self.resolved_dirs[folder] = folder.resolve()
                return resolved / path.name
        return path.resolve()

    def target(self, folder: Path, text: str) -> Path:
        key = (folder, text)
        resolved = self.targets.get(key)
        if resolved is None:
            target = Path(text)
            if not target.is_absolute():
                target = folder / target
            resolved = self.targets[key] = target.resolve()
        return resolved

    def kind(self, path: Path) -> str:
        kind = self.kinds.get(path)
        if kind is None:
            kind = self.kinds[path] = "file" if path.is_file() else "other" if path.exists() else "missing"
        return kind


class _Abort(Exception):
    """Stops the whole load (alias bomb, runaway nesting)."""

    def __init__(self, mark: Mark, message: str):
        super().__init__(message)
        self.mark = mark
        self.message = message


def load_yaml(
    path: str | Path,
    *,
    root: str | Path | None = None,
    memo: YamlMemo | None = None,
    include_root: str | Path | None = None,
    allow_include: bool = True,
) -> YamlDocument:
    """Load one YAML file (and what it includes). Never raises for bad input.

    `root` is what error paths are shown relative to; default: the file's folder.
    `include_root` confines `!include` (default: `root`); without `allow_include`, an
    `!include` is an issue. `memo`: the load's `YamlMemo`, shared by the files of one load.
    """
    path = Path(path).absolute()
    root_path = Path(root).absolute() if root is not None else path.parent
    doc = YamlDocument(file=path, root=root_path, positions=Positions(file=path))
    include_path = Path(include_root).absolute() if include_root is not None else root_path
    builder = _Builder(doc, memo if memo is not None else YamlMemo(), include_path if allow_include else None)
    try:
        doc.data = builder.load_file(path, prefix=(), site=None)
    except _Abort as abort:
        doc.issues.append(YamlIssue((), abort.mark, abort.message))
        doc.fatal = True
        doc.data = None
    except RecursionError:
        doc.issues.append(YamlIssue((), Mark(path, 1), f"document nested deeper than {MAX_DEPTH} levels"))
        doc.fatal = True
        doc.data = None
    if builder.top_level_failed:
        doc.fatal = True
    return doc


def _syntax_message(exc: yaml.YAMLError, text: str, line: int) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    message = f"YAML syntax error: {problem}"
    if context:
        context_mark = getattr(exc, "context_mark", None)
        where = f" (line {context_mark.line + 1})" if context_mark is not None else ""
        message += f", {context}{where}"
    lines = text.splitlines()
    if 1 <= line <= len(lines) and "\t" in lines[line - 1]:
        message += "; this line holds a tab: indent with spaces only"
    elif "cannot start any token" in message or "mapping values are not allowed" in message:
        message += "; check the indentation, and that each 'key: value' has a space after the colon"
    return message


class _Builder:
    """Builds the data of one document from composed nodes, recording positions.

    Hot path: every node of every config passes through `build`/`mapping`, so they keep
    their work small: a position in the document's own file is stored as its line number
    (see Positions), one in an included file as a Mark shared by every position on that
    line; plain text values are handled inline; the current file is held on the builder
    instead of being passed down.
    """

    def __init__(self, doc: YamlDocument, memo: YamlMemo, include_root: Path | None):
        self.doc = doc
        self.memo = memo
        self.root = doc.root
        self.include_root = include_root  # None: no !include
        self.include_resolved = memo.resolved_root(include_root) if include_root is not None else None
        self.chain: list[Path] = []
        self.nodes = 0
        self.constructor = SafeConstructor()
        self.top_level_failed = False
        self.keys = doc.positions._keys  # the stores themselves: lines stay lines
        self.values = doc.positions._values
        self.file: Path = doc.file  # the file whose nodes are being built
        self.marks: dict[int, Mark] = {}  # its marks by line
        self.own = True  # whether that is the document's own file (positions stored as lines)

    # -- files -----------------------------------------------------------------------
    def _rel(self, path: Path) -> str:
        return display_path(path, self.root)

    def _issue(self, path: KeyPath, mark: Mark, message: str) -> None:
        self.doc.issues.append(YamlIssue(tuple(path), mark, message))

    def _mark(self, line: int) -> Mark:
        mark = self.marks.get(line)
        if mark is None:
            mark = self.marks[line] = Mark(self.file, line)
        return mark

    def _compose(self, path: Path, fail: Any, site: Mark | None) -> tuple[bool, Node | None]:
        """(ok, root node or None when empty) of `path`; on a problem, `fail` is told."""
        try:
            size = path.stat().st_size
        except OSError as exc:
            fail(site or Mark(path, 1), f"cannot read {self._rel(path)}: {exc.strerror or exc}")
            return False, None
        if size > MAX_FILE_BYTES:
            fail(Mark(path, 1), f"file is {size} bytes; the limit is {MAX_FILE_BYTES} bytes (1 MiB)")
            return False, None
        try:
            text = read_text(path, what="config file")
        except NotUtf8Error as exc:
            fail(Mark(path, exc.line), exc.detail)
            return False, None
        except OSError as exc:
            fail(site or Mark(path, 1), f"cannot read {self._rel(path)}: {exc.strerror or exc}")
            return False, None

        composer = _Composer(text, self.memo.tags)
        try:
            node = composer.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            line = mark.line + 1 if mark is not None else 1
            fail(Mark(path, line), _syntax_message(exc, text, line))
            return False, None
        finally:
            composer.dispose()
        return True, node

    def load_file(self, path: Path, prefix: KeyPath, site: Mark | None) -> Any:
        """Build the data of `path` at `prefix`. `site` is the !include's mark (None: top).

        An included `path` is already resolved; its composed nodes come from the memo
        when another document of this load included it before.
        """
        top = site is None

        def fail(mark: Mark, message: str) -> None:
            self._issue(prefix, mark, message)
            if top:
                self.top_level_failed = True

        if top:
            ok, node = self._compose(path, fail, site)
            if not ok:
                return None
            marks: dict[int, Mark] = {}
        else:
            composed = self.memo.composed
            if path in composed:
                node = composed[path]
            else:
                ok, node = self._compose(path, fail, site)
                if not ok:
                    return None  # not kept: the problem is reported again where it recurs
                composed[path] = node
            marks = self.memo.marks.setdefault(path, {})
        if node is None:
            return None
        if not top:
            self.doc.includes.append(path)
        self.chain.append(self.memo.real_path(path) if top else path)
        outer = self.file, self.marks, self.own
        self.file, self.marks, self.own = path, marks, top
        try:
            return self.build(node, prefix, 0, set())
        finally:
            self.chain.pop()
            self.file, self.marks, self.own = outer

    def include(self, node: ScalarNode, path: KeyPath, site: Mark) -> Any:
        file = self.file
        target_text = str(node.value or "").strip()
        if not target_text:
            self._issue(path, site, "!include needs a file path, e.g. !include common/snowflake.yml")
            return None
        if self.include_resolved is None:
            self._issue(path, site, "!include is not allowed in this file")
            return None
        try:
            resolved = self.memo.target(file.parent, target_text)
        except (RuntimeError, OSError):  # resolve() met a symlink loop
            self._issue(path, site, f"!include {target_text!r} goes through a symlink loop")
            return None
        if not resolved.is_relative_to(self.include_resolved):
            assert self.include_root is not None
            shown = display_path(self.include_root, self.root)
            where = "the project directory" if self.include_root == self.root else f"{shown}/"
            self._issue(path, site, f"!include {target_text!r} points outside {where}: included files must lie there")
            return None
        if resolved in self.chain:
            cycle = [self._rel(p) for p in self.chain[self.chain.index(resolved) :]] + [self._rel(resolved)]
            self._issue(path, site, "!include cycle: " + " -> ".join(cycle))
            return None
        if len(self.chain) >= MAX_INCLUDE_DEPTH:
            self._issue(path, site, f"!include nested deeper than {MAX_INCLUDE_DEPTH} files")
            return None
        kind = self.memo.kind(resolved)
        if kind == "missing":
            self._issue(path, site, f"included file {self._rel(resolved)} not found (!include {target_text})")
            return None
        if kind != "file":
            self._issue(path, site, f"!include {target_text!r} is not a file")
            return None
        return self.load_file(resolved, path, site)

    # -- nodes -----------------------------------------------------------------------
    def _over_limit(self, mark: Mark, depth: int) -> None:
        """Raise for a node past MAX_NODES or MAX_DEPTH (the node is counted already)."""
        if self.nodes > MAX_NODES:
            raise _Abort(mark, f"document expands to more than {MAX_NODES} values (too many aliases? an alias bomb?)")
        raise _Abort(mark, f"document nested deeper than {MAX_DEPTH} levels")

    def build(self, node: Node, path: KeyPath, depth: int, active: set[int]) -> Any:
        line = node.start_mark.line + 1
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            self._over_limit(self._mark(line), depth)
        values = self.values
        if path not in values:
            values[path] = line if self.own else self._mark(line)

        if isinstance(node, ScalarNode):
            if node.tag == _STR_TAG:
                return node.value
            return self.scalar(node, path, self._mark(line))
        node_id = id(node)
        if node_id in active:
            raise _Abort(self._mark(line), "an alias refers to a node that contains it (recursive alias)")
        active.add(node_id)
        try:
            if isinstance(node, MappingNode):
                if node.tag != _MAP_TAG:
                    self._issue(path, self._mark(line), f"unsupported tag {node.tag} on a mapping")
                return self.mapping(node, path, depth, active)
            if isinstance(node, SequenceNode):
                if node.tag != _SEQ_TAG:
                    self._issue(path, self._mark(line), f"unsupported tag {node.tag} on a list")
                build = self.build
                child = depth + 1
                return [build(item, path + (i,), child, active) for i, item in enumerate(node.value)]
        finally:
            active.discard(node_id)
        raise _Abort(self._mark(line), f"unexpected YAML node {type(node).__name__}")  # pragma: no cover

    def scalar(self, node: ScalarNode, path: KeyPath, mark: Mark) -> Any:
        tag = node.tag
        if tag == _STR_TAG:
            return node.value
        if tag == INCLUDE_TAG:
            return self.include(node, path, mark)
        if tag not in _SCALAR_TAGS:
            self._issue(path, mark, f"unsupported tag {tag}; only plain values and !include are allowed")
            return node.value
        if tag == _NULL_TAG:
            return None
        try:
            return self.constructor.yaml_constructors[tag](self.constructor, node)
        except Exception:
            # e.g. an impossible date like 2020-02-30: keep the text, the schema explains.
            return node.value

    def _merge_sources(self, value: Node, path: KeyPath) -> list[MappingNode]:
        if isinstance(value, MappingNode):
            return [value]
        if isinstance(value, SequenceNode) and all(isinstance(v, MappingNode) for v in value.value):
            return list(value.value)
        self._issue(path, self._mark(value.start_mark.line + 1), "'<<' (merge) needs a mapping or a list of mappings")
        return []

    @staticmethod
    def _first_line(node: MappingNode, key: str) -> int:
        """The line of the first plain-text `key` of `node` (for a duplicate's message)."""
        for key_node, _ in node.value:
            if (
                isinstance(key_node, ScalarNode)
                and key_node.tag not in (_MERGE_TAG, INCLUDE_TAG)
                and str(key_node.value) == key
            ):
                return key_node.start_mark.line + 1
        return 1  # pragma: no cover - the key is there

    def mapping(self, node: MappingNode, path: KeyPath, depth: int, active: set[int]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merges: list[MappingNode] = []
        keys = self.keys
        values = self.values
        own = self.own
        child = depth + 1
        for key_node, value_node in node.value:
            if key_node.__class__ is not ScalarNode or key_node.tag in _SPECIAL_KEY_TAGS:
                if key_node.tag == _MERGE_TAG:
                    merges.extend(self._merge_sources(value_node, path))
                    continue
                if key_node.tag == INCLUDE_TAG or not isinstance(key_node, ScalarNode):
                    self._issue(path, self._mark(key_node.start_mark.line + 1), "a mapping key must be plain text")
                    continue
            key = key_node.value
            if type(key) is not str:
                key = str(key)  # pragma: no cover - scalar values are text
            key_line = key_node.start_mark.line + 1
            if key in out:  # every key written before (and not skipped) is in `out`
                self._issue(
                    path + (key,),
                    self._mark(key_line),
                    f"duplicate key {key!r} (first written at line {self._first_line(node, key)}); "
                    "YAML would silently keep only one of them",
                )
                continue
            key_path = path + (key,)
            if key_path not in keys:
                keys[key_path] = key_line if own else self._mark(key_line)
            if value_node.__class__ is ScalarNode and value_node.tag == _STR_TAG:
                # A plain text value (most of a config): what `build` does, inline.
                line = value_node.start_mark.line + 1
                self.nodes += 1
                if self.nodes > MAX_NODES or child > MAX_DEPTH:
                    self._over_limit(self._mark(line), child)
                if key_path not in values:
                    values[key_path] = line if own else self._mark(line)
                out[key] = value_node.value
            else:
                out[key] = self.build(value_node, key_path, child, active)
        # Merged keys never override keys written in the mapping; earlier sources win.
        for source in merges:
            if id(source) in active:
                raise _Abort(
                    self._mark(source.start_mark.line + 1), "a merge ('<<') refers to a mapping that contains it"
                )
            merged = self.mapping(source, path, child, active | {id(source)})
            for key, value in merged.items():
                out.setdefault(key, value)
        return out
