"""The real factory on a generated project of BENCH_PIPELINES pipelines (cached under /tmp)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from generate import generate  # noqa: E402

_n = int(os.environ.get("BENCH_PIPELINES", "10"))
_project = Path(os.environ.get("TMPDIR", "/tmp")) / f"ml_pipelines_bench_p{_n}"
if not (_project / "model_configs").exists():
    generate(_project, _n)
os.environ.update(ML_PIPELINES_PROJECT_DIR=str(_project), ML_PIPELINES_ENV="LOCAL",
                  ML_PIPELINES_HOME=str(_project / ".home"), ML_PIPELINES_STRICT="1")

from ml_pipelines.definitions import defs  # noqa: E402,F401
