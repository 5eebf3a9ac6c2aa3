#!/usr/bin/env bash
# What the models repo's CI checks before it builds an image (deploy/ci/models-repo-workflow.yml):
#   deploy/ci/check-models.sh MODELS_DIR
# 1. every config validates in LOCAL, DEV, BETA and PROD (`ml-pipelines validate`);
# 2. the code location loads from the models, strictly (any broken config fails it), as the
#    code server will load it;
# 3. the models repo's own tests (its tests/ folder, if any) pass.
# Needs the product installed (pip install -e 'ml-pipelines[dev]') and on PATH.
set -euo pipefail

if [[ $# -ne 1 || ! -d "$1/model_configs" ]]; then
    echo "usage: $0 MODELS_DIR   (a folder holding model_configs/)" >&2
    exit 2
fi
models="$(cd "$1" && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

echo "== ml-pipelines validate"
ml-pipelines --project-dir "$models" validate

echo "== the code location loads (strict)"
mkdir -p "$scratch/dagster_home"
: > "$scratch/dagster_home/dagster.yaml"
DAGSTER_HOME="$scratch/dagster_home" ML_PIPELINES_PROJECT_DIR="$models" ML_PIPELINES_ENV=LOCAL \
    ML_PIPELINES_STRICT=1 ML_PIPELINES_HOME="$scratch/home" \
    dagster definitions validate -m ml_pipelines.definitions

if [[ -d "$models/tests" ]]; then
    echo "== the models repo's tests"
    status=0
    (cd "$models" && ML_PIPELINES_PROJECT_DIR="$models" python -m pytest tests -q -p no:cacheprovider) || status=$?
    if [[ $status -ne 0 && $status -ne 5 ]]; then  # 5: no test collected
        exit "$status"
    fi
else
    echo "== no tests/ in $models: nothing more to run"
fi
