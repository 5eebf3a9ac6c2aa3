"""One shape variant as a code location: the variant is named by BENCH_VARIANT (see variants.py).

BENCH_VARIANT=winner BENCH_PIPELINES=1000 PYTHONPATH=bench/shapes:. dagster definitions validate -m location
"""

import os

from variants import VARIANTS, defs_for

if "BENCH_VARIANT" not in os.environ:
    raise SystemExit(f"set BENCH_VARIANT to one of: {', '.join(VARIANTS)}")

defs = defs_for(os.environ["BENCH_VARIANT"])
