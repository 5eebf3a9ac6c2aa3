"""Shared check: fail unless a day's partition holds enough rows.

Any model can run it with `script_loc: common` and `script_name: check_partition`.

Arguments (`--key value`):
  path       root of a dataset partitioned by day: <path>/dt=<dt>/ (local folder or s3://)
  dt         the day to check, YYYY-MM-DD
  format     parquet or csv (default parquet)
  min_rows   fewer rows than this fails the step (default 1)

Exit code 0 when the partition is there with at least min_rows rows, 1 otherwise.

    python Py_Models/check_partition.py --path /tmp/data --dt 2024-01-05 --min_rows 10
"""

from __future__ import annotations

import argparse
import sys

from partition_stats import partition_row_count


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Fail unless a day's partition holds enough rows.")
    parser.add_argument("--path", required=True)
    parser.add_argument("--dt", required=True)
    parser.add_argument("--format", default="parquet", choices=("parquet", "csv"))
    parser.add_argument("--min_rows", type=int, default=1)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"ignoring unknown arguments: {' '.join(unknown)}")
    files, rows = partition_row_count(args.path, args.dt, args.format)
    where = f"{args.path.rstrip('/')}/dt={args.dt}/"
    if rows < args.min_rows:
        print(f"FAILED: {where} has {rows} row(s) in {files} {args.format} file(s); expected at least {args.min_rows}",
              file=sys.stderr)
        return 1
    print(f"OK: {where} has {rows} row(s) in {files} {args.format} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
