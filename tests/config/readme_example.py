"""Turn the big YAML example of the old generator's README into a plain config, mechanically.

The README (kept outside this repo, in shared/reference/) annotates its example with
`<< ... >>` notes, some spanning several lines, some left unclosed, some inside the
quotes of a value, and indents a few keys with tabs. The rules below do what the issue
asks: remove the annotations, replace tabs by spaces (a tab = 8 columns, which lines the
tab-indented keys up with their siblings), give `key:"value"` its space, and fill the
blank names (model_name, glue_model_name, buckets) with ones that exist in the fixture
project. Nothing of the README is stored in the repo: the test reads it at run time.
"""

from __future__ import annotations

import re
from pathlib import Path

REFERENCE_README = Path(__file__).resolve().parents[3] / "shared" / "reference" / "original-airflow-readme.md"

_KEY = re.compile(r"^(\s*)(- )?([A-Za-z_][\w\-]*):(.*)$")


def example_block(readme_text: str) -> str:
    """The fenced block that holds `dags:`."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", readme_text, flags=re.S)
    for block in blocks:
        if "\ndags:" in block and "CommonConf" in block:
            return block
    raise ValueError("no config example in the README")


def _strip_value(rest: str) -> str:
    """The value part of `key: <rest>` without any annotation after or inside it."""
    rest = rest.strip()
    if rest.startswith('"'):
        end = rest.find('"', 1)
        value = rest[: end + 1] if end != -1 else rest + '"'
        # An annotation written inside the quotes ("<<mention dev bucket>>") leaves a blank.
        if "<<" in value:
            value = '""'
        return value
    cut = rest.find("<")
    return (rest[:cut] if cut != -1 else rest).strip()


def strip_annotations(block: str) -> str:
    out = []
    last_indent = 0
    for raw_line in block.expandtabs(8).splitlines():
        indent_width = len(raw_line) - len(raw_line.lstrip())
        if raw_line.strip() and indent_width > last_indent + 4:
            continue  # far deeper than the last key: an annotation's continuation ("NOTE: ...")
        if not raw_line.strip():
            out.append("")
            continue
        if raw_line.lstrip().startswith("#"):
            out.append(raw_line.rstrip())
            continue
        match = _KEY.match(raw_line)
        if match:
            indent, dash, key, rest = match.groups()
            value = _strip_value(rest)
            out.append(f"{indent}{dash or ''}{key}: {value}".rstrip())
            last_indent = indent_width + (2 if dash else 0)
            continue
        item = re.match(r"^(\s*)- (\".*?\")", raw_line)
        if item:
            out.append(f"{item.group(1)}- {item.group(2)}")
            last_indent = indent_width + 2
            continue
        # Anything else continues an annotation of an earlier line: drop it.
    return "\n".join(out) + "\n"


def fill_blanks(text: str, *, model_name: str, glue_model_name: str, bucket: str) -> str:
    text = text.replace('model_name: ""', f'model_name: "{model_name}"', 1)
    text = text.replace('glue_model_name: ""', f'glue_model_name: "{glue_model_name}"', 1)
    text = re.sub(r'model_bucket: ""', f'model_bucket: "{bucket}"', text)
    return text


def readme_config(readme_text: str, *, model_name: str, glue_model_name: str, bucket: str) -> str:
    return fill_blanks(
        strip_annotations(example_block(readme_text)),
        model_name=model_name,
        glue_model_name=glue_model_name,
        bucket=bucket,
    )


def parameter_example(readme_text: str) -> str:
    """The README's parameters.json example (a fenced block holding a JSON object)."""
    for block in re.findall(r"```[a-z]*\n(.*?)```", readme_text, flags=re.S):
        if block.lstrip().startswith("{") and '"COMMON"' in block:
            return block
    raise ValueError("no parameter example in the README")
