"""Backends for DEV, BETA and PROD: AWS services and Snowflake."""
