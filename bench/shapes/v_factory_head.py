"""v_factory, but importing ml_pipelines from the worktree named by BENCH_HEAD_TREE (A/B runs)."""

import os
import sys

sys.path.insert(0, os.environ.get("BENCH_HEAD_TREE", "/tmp/head_wt"))
import v_factory  # noqa: E402,F401

defs = v_factory.defs
