"""Summarize bench/shapes/results.jsonl: python summarize.py [LABEL_SUBSTRING[,LABEL...]] [--size N]

Per variant: median/min wall, median/max RSS, median/min CPU (user+sys). On a shared machine the
minimum is the steadiest estimate of a variant's own cost (noise only adds time).
"""
import json
import statistics
import sys
from pathlib import Path

args = sys.argv[1:]
size = None
if "--size" in args:
    i = args.index("--size")
    size = int(args[i + 1])
    del args[i : i + 2]
label = args[0] if args else ""
rows: dict = {}
for line in (Path(__file__).resolve().parent / "results.jsonl").read_text().splitlines():
    r = json.loads(line)
    if not any(lbl in r["label"] for lbl in label.split(",")) or (size and r["size"] != size):
        continue
    rows.setdefault((r["size"], r["variant"]), []).extend(r["runs"])
print(f"{'size':>5} {'variant':26} {'n':>2} {'wall med':>8} {'wall min':>8} {'MiB med':>7} {'MiB max':>7} "
      f"{'cpu med':>7} {'cpu min':>7}")
for (n, v), runs in rows.items():
    w = [r[0] for r in runs]; m = [r[1] for r in runs]; c = [r[2] for r in runs if len(r) > 2]
    print(f"{n:>5} {v:26} {len(runs):>2} {statistics.median(w):8.2f} {min(w):8.2f} {statistics.median(m):7.0f} "
          f"{max(m):7.0f} {statistics.median(c) if c else float('nan'):7.2f} {min(c) if c else float('nan'):7.2f}")
