"""deploy/Dockerfile read as instructions (for the tests; no Docker needed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    stage: str  # the FROM's `AS` name, else its index
    keyword: str
    args: str


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    out: list[Instruction] = []
    stage = ""
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            stage = (
                words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(sum(i.keyword == "FROM" for i in out))
            )
        out.append(Instruction(stage, keyword, args.strip()))
    return out


def image_command() -> list[str]:
    """The image's CMD (exec form)."""
    (cmd,) = [i for i in instructions() if i.keyword == "CMD"]
    return json.loads(cmd.args)
