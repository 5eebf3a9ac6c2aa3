"""AWS backends: the step interfaces of `ml_pipelines.steps` on S3 and other AWS services."""
