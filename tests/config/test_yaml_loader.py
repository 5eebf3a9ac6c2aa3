"""The line-tracking YAML loader: positions, !include, duplicates, caps, syntax errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_pipelines.config import yaml_loader
from ml_pipelines.config.yaml_loader import load_yaml


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return path


def only_error(doc):
    errors = doc.errors
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def test_positions_of_keys_values_and_items(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.yml",
        "a: 1\nb:\n  c: x\n  list:\n    - one\n    - name: two\n      k: 3\n",
    )
    doc = load_yaml(path, root=tmp_path)
    assert not doc.issues and not doc.fatal
    assert doc.data == {"a": 1, "b": {"c": "x", "list": ["one", {"name": "two", "k": 3}]}}
    pos = doc.positions
    assert pos.keys[("a",)].line == 1
    assert pos.keys[("b", "c")].line == 3
    assert pos.values[("b", "list", 0)].line == 5
    assert pos.values[("b", "list", 1)].line == 6
    assert pos.keys[("b", "list", 1, "k")].line == 7
    # an unknown path falls back to its nearest parent
    assert pos.line(("b", "list", 1, "missing")) == 6
    error = doc.error_at(("b", "list", 1, "k"), "bad")
    assert str(error) == "c.yml:7: b.list[1](two).k: bad"


def test_keys_are_the_text_written(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "c.yml", "no: 1\nTrue: 2\n3: x\nvalue: no\n"), root=tmp_path)
    assert doc.data == {"no": 1, "True": 2, "3": "x", "value": False}


def test_unquoted_loose_values_stay_text(tmp_path: Path) -> None:
    doc = load_yaml(
        write(tmp_path, "c.yml", "p: 60 * 5\nd: timedelta(hours=1)\ns: 2020-08-4\nn: None\nt:\n"), root=tmp_path
    )
    assert doc.data == {"p": "60 * 5", "d": "timedelta(hours=1)", "s": "2020-08-4", "n": "None", "t": None}


def test_impossible_date_is_kept_as_text(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "c.yml", "d: 2020-02-30\n"), root=tmp_path)
    assert doc.data == {"d": "2020-02-30"} and not doc.issues


def test_include_relative_to_the_including_file_and_nested(tmp_path: Path) -> None:
    write(tmp_path, "configs/main.yml", "common: !include common/a.yml\nother: 1\n")
    write(tmp_path, "configs/common/a.yml", "x: 1\ninner: !include deeper/b.yml\n")
    write(tmp_path, "configs/common/deeper/b.yml", "\n\ny: 2\n")
    doc = load_yaml(tmp_path / "configs/main.yml", root=tmp_path)
    assert not doc.issues
    assert doc.data == {"common": {"x": 1, "inner": {"y": 2}}, "other": 1}
    mark = doc.positions.find(("common", "inner", "y"), prefer_key=True)
    assert mark.file == tmp_path / "configs/common/deeper/b.yml" and mark.line == 3
    # the include site itself is located in the including file
    assert doc.positions.values[("common",)].file == tmp_path / "configs/main.yml"


def test_include_missing_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "main.yml", "a: 1\nb: !include nope.yml\n")
    error = only_error(load_yaml(path, root=tmp_path))
    assert str(error) == "main.yml:2: b: included file nope.yml not found (!include nope.yml)"


def test_include_cycle_names_the_chain(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", "x: !include b.yml\n")
    write(tmp_path, "b.yml", "\ny: !include a.yml\n")
    error = only_error(load_yaml(tmp_path / "a.yml", root=tmp_path))
    assert error.display_path == "b.yml" and error.line == 2
    assert error.key_path == "x.y"
    assert "a.yml -> b.yml -> a.yml" in error.message


def test_include_of_itself_is_a_cycle(tmp_path: Path) -> None:
    error = only_error(load_yaml(write(tmp_path, "a.yml", "x: !include a.yml\n"), root=tmp_path))
    assert "a.yml -> a.yml" in error.message


@pytest.mark.parametrize("target", ["../outside.yml", "{outside}"])
def test_include_cannot_leave_the_project(tmp_path: Path, target: str) -> None:
    root = tmp_path / "project"
    outside = write(tmp_path, "outside.yml", "secret: 1\n")
    target = target.format(outside=outside)
    path = write(root, "main.yml", f"a: !include {target}\n")
    doc = load_yaml(path, root=root)
    error = only_error(doc)
    assert error.line == 1 and error.key_path == "a"
    assert "outside the project" in error.message
    assert doc.data == {"a": None}


def test_include_by_absolute_path_inside_the_project_is_fine(tmp_path: Path) -> None:
    inner = write(tmp_path, "common/x.yml", "k: v\n")
    doc = load_yaml(write(tmp_path, "main.yml", f"a: !include {inner}\n"), root=tmp_path)
    assert doc.data == {"a": {"k": "v"}} and not doc.issues


def test_include_of_a_folder_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    doc = load_yaml(write(tmp_path, "main.yml", "a: !include folder\nb: !include\n"), root=tmp_path)
    messages = [e.message for e in doc.errors]
    assert any("is not a file" in m for m in messages)
    assert any("needs a file path" in m for m in messages)


def test_syntax_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path, "common/bad.yml", "ok: 1\nbroken: [1, 2\n")
    doc = load_yaml(write(tmp_path, "main.yml", "top: 1\nc: !include common/bad.yml\n"), root=tmp_path)
    error = only_error(doc)
    assert error.display_path == "common/bad.yml"
    assert error.line >= 2
    assert error.key_path == "c"
    assert "YAML syntax error" in error.message
    assert not doc.fatal  # the including file itself is fine


def test_duplicate_key_is_an_error_with_both_lines(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "c.yml", "a:\n  x: 1\n  y: 2\n  x: 3\n"), root=tmp_path)
    error = only_error(doc)
    assert str(error).startswith("c.yml:4: a.x: duplicate key 'x' (first written at line 2)")
    assert doc.data == {"a": {"x": 1, "y": 2}}


def test_duplicate_key_in_a_flow_mapping(tmp_path: Path) -> None:
    error = only_error(load_yaml(write(tmp_path, "c.yml", "a: {x: 1, x: 2}\n"), root=tmp_path))
    assert error.line == 1 and error.key_path == "a.x"


def test_syntax_error_has_the_line(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "c.yml", "a: 1\nb: [1, 2\nc: 3\n"), root=tmp_path)
    assert doc.fatal
    error = only_error(doc)
    assert error.display_path == "c.yml" and error.line in (3, 4)
    assert error.key_path == ""
    assert str(error).startswith(f"c.yml:{error.line}: YAML syntax error")


def test_tab_indentation_gets_a_hint(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "c.yml", "a:\n  b: 1\n\tc: 2\n"), root=tmp_path)
    error = only_error(doc)
    assert error.line == 3 and "tab" in error.message


def test_key_without_space_after_colon(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "c.yml", 'a:\n  b: 1\n  c:"x"\n  d: 2\n'), root=tmp_path)
    error = only_error(doc)
    assert error.line in (3, 4) and "syntax" in error.message


def test_alias_bomb_is_stopped(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    doc = load_yaml(write(tmp_path, "bomb.yml", "\n".join(lines) + "\n"), root=tmp_path)
    assert doc.fatal and doc.data is None
    error = only_error(doc)
    assert "alias bomb" in error.message and error.line is not None


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "c.yml", "a: &x [1, *x]\n"), root=tmp_path)
    assert doc.fatal and "recursive alias" in only_error(doc).message


def test_plain_aliases_and_merge_keys_work(tmp_path: Path) -> None:
    text = "base: &b {x: 1, y: 2}\nuse: *b\nmerged:\n  <<: *b\n  y: 3\n"
    doc = load_yaml(write(tmp_path, "c.yml", text), root=tmp_path)
    assert not doc.issues
    assert doc.data["use"] == {"x": 1, "y": 2}
    assert doc.data["merged"] == {"x": 1, "y": 3}
    assert doc.positions.keys[("merged", "y")].line == 5


def test_oversize_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "big.yml", "a: " + "x" * (yaml_loader.MAX_FILE_BYTES + 10) + "\n")
    doc = load_yaml(path, root=tmp_path)
    assert doc.fatal
    error = only_error(doc)
    assert str(error).startswith("big.yml:1: file is") and "limit" in error.message


def test_python_tags_are_not_constructed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"a: !!python/object/apply:os.system ['touch {marker}']\nb: !!python/name:os.system\n"
    doc = load_yaml(write(tmp_path, "c.yml", text), root=tmp_path)
    assert not marker.exists()
    assert len(doc.errors) == 2
    assert all("unsupported tag" in e.message for e in doc.errors)


def test_several_documents_are_refused(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "c.yml", "a: 1\n---\nb: 2\n"), root=tmp_path)
    assert doc.fatal and "single document" in only_error(doc).message


def test_not_utf8(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "c.yml", b"a: \xff\xfe\n"), root=tmp_path)
    assert doc.fatal and "UTF-8" in only_error(doc).message


LATIN1_ON_LINE_7 = "".join(f"k{i}: v\n" for i in range(1, 7)).encode() + 'owner: "Équipe Données"\n'.encode("latin-1")


def test_not_utf8_names_the_line_column_and_byte(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "c.yml", LATIN1_ON_LINE_7), root=tmp_path)
    assert doc.fatal
    assert str(only_error(doc)) == (
        "c.yml:7: the file is not UTF-8 text: column 9 has the byte 0xC9 ('É' in Windows-1252/Latin-1); "
        "save the file as UTF-8"
    )


def test_utf8_with_a_bom_is_read(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "c.yml", '\ufeffowner: "Équipe"\n'.encode()), root=tmp_path)
    assert not doc.issues and doc.data == {"owner": "Équipe"}


def test_not_utf8_in_an_included_file_is_located_there(tmp_path: Path) -> None:
    write(tmp_path, "common/latin.yml", LATIN1_ON_LINE_7)
    doc = load_yaml(write(tmp_path, "main.yml", "top: 1\nc: !include common/latin.yml\n"), root=tmp_path)
    error = only_error(doc)
    assert (error.display_path, error.line, error.key_path) == ("common/latin.yml", 7, "c")
    assert "byte 0xC9" in error.message and not doc.fatal


def test_empty_file(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "c.yml", "# nothing\n"), root=tmp_path)
    assert doc.data is None and not doc.issues


def test_non_text_keys_are_refused(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "c.yml", "? [a, b]\n: 1\n"), root=tmp_path)
    assert "plain text" in only_error(doc).message
