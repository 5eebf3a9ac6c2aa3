"""Land one day of raw viewing events (a stand-in for an upstream export).

Writes `<raw_path>/dt=<dt>/events.csv` with columns
`event_id,dt,user_id,title_id,device,minutes_watched`. The rows are generated from the
title catalog shipped beside this script (`data/titles.csv`) with a random generator
seeded by the date, so the same `--dt` always gives the same file.

Arguments arrive as `--key value` pairs: the model's `land_raw_events.json` parameter
file (COMMON + the environment's section) and the step's `templates_dict`. Unknown
arguments are ignored so the parameter file can grow without breaking the script.

`raw_path` is a local directory in LOCAL and an `s3://` URI on AWS; pyarrow's file
systems handle both.

    python land_raw_events.py --dt 2024-01-05 --raw_path /tmp/raw --events_per_day 400
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import sys
from datetime import date
from pathlib import Path

from pyarrow import fs

TITLES_FILE = Path(__file__).resolve().parent / "data" / "titles.csv"
DEVICES = ("tv", "mobile", "web", "tablet")
COLUMNS = ("event_id", "dt", "user_id", "title_id", "device", "minutes_watched")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dt", required=True, help="logical date, YYYY-MM-DD")
    parser.add_argument("--raw_path", required=True, help="root folder (or s3:// prefix) of the raw events")
    parser.add_argument("--events_per_day", type=int, default=400)
    parser.add_argument("--users", type=int, default=120)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"ignoring unknown arguments: {' '.join(unknown)}")
    date.fromisoformat(args.dt)  # fail early on a malformed date
    return args


def read_titles() -> list[dict[str, str]]:
    with TITLES_FILE.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def generate_events(dt: str, titles: list[dict[str, str]], count: int, users: int) -> list[tuple]:
    rng = random.Random(int(dt.replace("-", "")))
    weights = [int(t["popularity"]) for t in titles]
    rows = []
    for n in range(count):
        title = rng.choices(titles, weights=weights, k=1)[0]
        minutes = round(rng.uniform(2, 20) + int(title["popularity"]) * rng.uniform(0, 6), 1)
        rows.append(
            (
                f"{dt.replace('-', '')}-{n:05d}",
                dt,
                f"U{rng.randrange(users):04d}",
                title["title_id"],
                rng.choice(DEVICES),
                minutes,
            )
        )
    return rows


def write_csv(rows: list[tuple], raw_path: str, dt: str) -> str:
    if "://" not in raw_path:
        raw_path = os.path.abspath(raw_path)
    filesystem, root = fs.FileSystem.from_uri(raw_path)
    folder = f"{root.rstrip('/')}/dt={dt}"
    filesystem.create_dir(folder, recursive=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    target = f"{folder}/events.csv"
    with filesystem.open_output_stream(target) as out:  # replaces the day's file on a re-run
        out.write(buffer.getvalue().encode("utf-8"))
    return target


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    titles = read_titles()
    rows = generate_events(args.dt, titles, args.events_per_day, args.users)
    target = write_csv(rows, args.raw_path, args.dt)
    print(f"wrote {len(rows)} events for {args.dt} ({len(titles)} titles) to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
