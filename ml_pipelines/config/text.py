"""Reading the project's text files: UTF-8 (a BOM is tolerated), or an error that says where.

A file saved in Latin-1 or Windows-1252 by an editor fails to decode at its first accented
character; Python's UnicodeDecodeError gives only a byte offset. `read_text` reports the
1-based line and column of the first bad byte, the byte, and what to do.
"""

from __future__ import annotations

from pathlib import Path

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class NotUtf8Error(UnicodeDecodeError):
    """A file that is not UTF-8 text.

    A UnicodeDecodeError (so a ValueError), so that code catching UnicodeDecodeError
    around `Path.read_text` keeps working when switched to `read_text`. `str()` names
    the file; `detail` ("the file is not UTF-8 text: column 12 has ...") leaves out its
    name and line, for callers that print their own `path:line:` location.
    """

    def __init__(self, path: Path, data: bytes, exc: UnicodeDecodeError, *, what: str, name: str):
        # `data`: the bytes `exc` was raised for (the file's, without a UTF-8 BOM).
        super().__init__(exc.encoding, data, exc.start, exc.end, exc.reason)
        self.path = path
        head = data[: exc.start]
        self.line = 1 + head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n")
        line_start = max(head.rfind(b"\n"), head.rfind(b"\r")) + 1
        # Everything before the first bad byte decodes; columns count characters, not bytes.
        self.column = len(head[line_start:].decode("utf-8")) + 1
        self.byte = data[exc.start]
        self.what = what
        self.name = name
        found = f"has the byte 0x{self.byte:02X}{_guess(self.byte, data)}; save the file as UTF-8"
        self.detail = f"the file is not UTF-8 text: column {self.column} {found}"
        self._message = f"{what} {name} is not UTF-8 text: line {self.line}, column {self.column} {found}"

    def __str__(self) -> str:
        return self._message


def _guess(byte: int, data: bytes) -> str:
    """What the byte probably is: the file's encoding, or the character in Windows-1252."""
    if data.startswith(_UTF16_BOMS):
        return " (the file is UTF-16)"
    try:
        char = bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return ""
    return f" ({char!r} in Windows-1252/Latin-1)"


def read_text(path: str | Path, *, what: str = "file", name: str | None = None) -> str:
    """The text of `path` decoded as UTF-8 (a leading BOM dropped).

    Raises NotUtf8Error for a file that is not UTF-8; its message reads
    "<what> <name> is not UTF-8 text: line 7, column 12 has the byte 0xE9 ('é' in
    Windows-1252/Latin-1); save the file as UTF-8". `name` defaults to the path as given.
    OSError passes through.
    """
    path = Path(path)
    data = path.read_bytes().removeprefix(_UTF8_BOM)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotUtf8Error(path, data, exc, what=what, name=str(path) if name is None else name) from None
