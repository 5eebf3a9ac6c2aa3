"""Model configs: YAML loading with !include, the schema, cross-checks and parameters.

Nothing in this package imports Dagster or AWS.
"""
