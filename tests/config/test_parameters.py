import json
from pathlib import Path

import pytest

from ml_pipelines.config.parameters import (
    ParameterFileError,
    resolve_parameters,
    s3_uri_to_local_path,
)


def write(tmp_path: Path, data, name="parameters.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path


FULL = {
    "COMMON": {"top_n": 25, "metric": "blended", "input_path": "s3://common-bucket/shared/"},
    "DEV": {
        "input_path": "s3://dev-bucket/in/data.csv",
        "metric": "dev_metric",
        "nested": {"paths": ["s3://dev-bucket/a", "keep-me", 3], "deep": {"p": "s3://b2/k/"}},
        "text": "copy s3://dev-bucket/x later",
    },
    "BETA": {"input_path": "s3://beta-bucket/in"},
    "PROD": {"input_path": "s3://prod-bucket/in"},
}


def test_common_overlaid_by_env_section(tmp_path):
    path = write(tmp_path, FULL)
    assert resolve_parameters(path, "PROD") == {"top_n": 25, "metric": "blended", "input_path": "s3://prod-bucket/in"}
    dev = resolve_parameters(path, "dev")  # env name is case-insensitive
    assert dev["metric"] == "dev_metric" and dev["top_n"] == 25
    assert dev["input_path"] == "s3://dev-bucket/in/data.csv"  # no mapping outside LOCAL


def test_local_section_wins_without_mapping(tmp_path):
    path = write(tmp_path, {**FULL, "LOCAL": {"input_path": "/data/in.csv", "other": "s3://x/y"}})
    params = resolve_parameters(path, "LOCAL", storage_root=tmp_path / "storage")
    assert params["input_path"] == "/data/in.csv"
    assert params["other"] == "s3://x/y"  # an explicit LOCAL section is taken as written
    assert params["metric"] == "blended"


def test_local_falls_back_to_dev_with_s3_mapped_recursively(tmp_path):
    root = tmp_path / "storage"
    params = resolve_parameters(write(tmp_path, FULL), "LOCAL", storage_root=root)
    base = root.resolve()
    assert params["input_path"] == str(base / "dev-bucket" / "in" / "data.csv")
    assert params["nested"]["paths"] == [str(base / "dev-bucket" / "a"), "keep-me", 3]
    assert params["nested"]["deep"]["p"] == str(base / "b2" / "k") + "/"  # trailing slash kept
    assert params["text"] == "copy s3://dev-bucket/x later"  # only whole values are mapped
    assert params["metric"] == "dev_metric" and params["top_n"] == 25


def test_local_fallback_maps_common_values_too(tmp_path):
    data = {"COMMON": {"shared": "s3://c/shared/x"}, "DEV": {}, "BETA": {}, "PROD": {}}
    params = resolve_parameters(write(tmp_path, data), "LOCAL", storage_root=tmp_path)
    assert params["shared"] == str(tmp_path.resolve() / "c" / "shared" / "x")


def test_local_fallback_without_storage_root_needs_one_only_for_s3_values(tmp_path):
    plain = write(tmp_path, {"DEV": {"a": 1}, "BETA": {}, "PROD": {}}, "plain.json")
    assert resolve_parameters(plain, "LOCAL") == {"a": 1}
    with pytest.raises(ParameterFileError, match="storage root"):
        resolve_parameters(write(tmp_path, FULL), "LOCAL")


def test_missing_file_gives_empty(tmp_path):
    assert resolve_parameters(None, "DEV") == {}
    assert resolve_parameters(tmp_path / "nope.json", "PROD") == {}


def test_missing_env_section_names_file_and_section(tmp_path):
    path = write(tmp_path, {"COMMON": {"a": 1}, "DEV": {"a": 2}})
    with pytest.raises(ParameterFileError) as exc:
        resolve_parameters(path, "PROD")
    assert str(path) in str(exc.value) and "PROD" in str(exc.value)
    assert "has DEV" in str(exc.value)


def test_common_only_file_serves_every_env(tmp_path):
    path = write(tmp_path, {"COMMON": {"a": 1, "p": "s3://b/k"}})
    assert resolve_parameters(path, "PROD") == {"a": 1, "p": "s3://b/k"}
    assert resolve_parameters(path, "LOCAL", storage_root=tmp_path) == {
        "a": 1,
        "p": str(tmp_path.resolve() / "b" / "k"),
    }


def test_bad_json_names_file_and_line(tmp_path):
    path = write(tmp_path, '{\n  "DEV": {"a": 1},\n  "PROD": {"a": 2,}\n}\n')
    with pytest.raises(ParameterFileError) as exc:
        resolve_parameters(path, "DEV")
    assert exc.value.line == 3
    assert str(exc.value).startswith(f"{path}:3: invalid JSON")


def test_bad_shapes(tmp_path):
    with pytest.raises(ParameterFileError, match="expected a JSON object"):
        resolve_parameters(write(tmp_path, "[1, 2]", "list.json"), "DEV")
    path = write(tmp_path, '{\n "DEV": {},\n "PROD": "x"\n}', "sec.json")
    with pytest.raises(ParameterFileError) as exc:
        resolve_parameters(path, "DEV")
    assert exc.value.line == 3 and "section PROD must be an object of parameter names to values, not text" in str(
        exc.value
    )
    with pytest.raises(ParameterFileError, match="did you mean 'PROD'"):
        resolve_parameters(write(tmp_path, {"DEV": {}, "Prd": {}}, "typo.json"), "DEV")


def test_s3_uri_to_local_path(tmp_path):
    assert s3_uri_to_local_path("s3://b/k/x.csv", tmp_path) == tmp_path.resolve() / "b" / "k" / "x.csv"
    assert s3_uri_to_local_path("s3://b", tmp_path) == tmp_path.resolve() / "b"
    with pytest.raises(ValueError, match="outside"):
        s3_uri_to_local_path("s3://b/../../etc/passwd", tmp_path)
    with pytest.raises(ValueError):
        s3_uri_to_local_path("https://b/k", tmp_path)
    with pytest.raises(ValueError):
        s3_uri_to_local_path("s3:///k", tmp_path)
