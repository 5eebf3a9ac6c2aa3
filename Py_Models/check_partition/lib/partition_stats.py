"""Row counts of a day partition, on a local folder or s3:// (pyarrow file systems)."""

from __future__ import annotations

import os

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pyarrow import fs


def partition_row_count(path: str, dt: str, fmt: str) -> tuple[int, int]:
    """(data files, rows) under `<path>/dt=<dt>/`; (0, 0) when the folder is missing.
    Hidden and marker files (`.x`, `_SUCCESS`) are skipped."""
    if "://" not in path:
        path = os.path.abspath(path)
    filesystem, root = fs.FileSystem.from_uri(path)
    folder = f"{root.rstrip('/')}/dt={dt}"
    if filesystem.get_file_info(folder).type != fs.FileType.Directory:
        return 0, 0
    files = rows = 0
    for info in filesystem.get_file_info(fs.FileSelector(folder, recursive=True)):
        if info.type != fs.FileType.File or info.base_name.startswith((".", "_")):
            continue
        files += 1
        if fmt == "parquet":
            rows += pq.ParquetFile(info.path, filesystem=filesystem).metadata.num_rows
        else:
            with filesystem.open_input_file(info.path) as handle:
                rows += pacsv.read_csv(handle).num_rows
    return files, rows
