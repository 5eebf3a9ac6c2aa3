"""Tests of the AWS backends against a moto server on 127.0.0.1."""
