"""ml-pipelines: Dagster assets from YAML model configs."""
