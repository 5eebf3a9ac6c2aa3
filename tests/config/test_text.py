"""read_text: UTF-8 with a BOM tolerated; otherwise the line, column and byte of the first bad byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_pipelines.config.text import NotUtf8Error, read_text


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "f.sql"
    path.write_bytes(data)
    return path


def error_of(path: Path, **kwargs) -> NotUtf8Error:
    with pytest.raises(NotUtf8Error) as info:
        read_text(path, **kwargs)
    return info.value


@pytest.mark.parametrize("data", ["select 'é';\n".encode(), "\ufeffselect 'é';\n".encode()])
def test_utf8_with_or_without_bom(tmp_path: Path, data: bytes) -> None:
    assert read_text(write(tmp_path, data)) == "select 'é';\n"


def test_message_names_file_line_column_and_byte(tmp_path: Path) -> None:
    path = write(tmp_path, b"select 1;\r\n-- caf\xc3\xa9 ok\rselect '\xe9t\xe9';\n")
    error = error_of(path, what="SQL file", name="pipeline/f.sql")
    # CRLF and a lone CR both end a line; the column counts characters (the é before is one).
    assert (error.path, error.line, error.column, error.byte) == (path, 3, 9, 0xE9)
    assert str(error) == (
        "SQL file pipeline/f.sql is not UTF-8 text: line 3, column 9 has the byte 0xE9 "
        "('é' in Windows-1252/Latin-1); save the file as UTF-8"
    )
    assert error.detail.startswith("the file is not UTF-8 text: column 9 has the byte 0xE9")
    assert isinstance(error, ValueError) and isinstance(error, UnicodeDecodeError)


def test_default_name_is_the_path_and_bom_does_not_shift_the_column(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbfab\x92")
    error = error_of(path)
    assert (error.line, error.column) == (1, 3)
    assert str(error).startswith(f"file {path} is not UTF-8 text: line 1, column 3 has the byte 0x92 ('’' in")


def test_utf16_is_named(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "a: 1\n".encode("utf-16")))
    assert "(the file is UTF-16); save the file as UTF-8" in str(error)


def test_missing_file_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "nope.sql")
