from datetime import datetime, timezone

import pytest

from ml_pipelines.config.templates import (
    TemplateRenderError,
    render,
    render_templates_dict,
    template_context,
    template_syntax_error,
    undeclared_names,
)
from ml_pipelines.config.variables import load_variables
from ml_pipelines.plan.model import TimeWindow

UTC = timezone.utc
WINDOW = TimeWindow(start=datetime(2024, 1, 31, tzinfo=UTC), end=datetime(2024, 2, 1, tzinfo=UTC))


def r(text, window=WINDOW, env="DEV", variables=None, **kw):
    return render(text, template_context(window, env, variables or {}, **kw), where="step s, templates_dict.k")


@pytest.mark.parametrize(
    "template, expected",
    [
        ("{{ ds }}", "2024-01-31"),
        ("{{ ds_nodash }}", "20240131"),
        ("{{ ts }}", "2024-01-31T00:00:00+00:00"),
        ("{{ ts_nodash }}", "20240131T000000"),
        ("{{ ts_nodash_with_tz }}", "20240131T000000+0000"),
        ("{{ data_interval_start }}", "2024-01-31T00:00:00+00:00"),
        ("{{ data_interval_end }}", "2024-02-01T00:00:00+00:00"),
        ("{{ logical_date }}|{{ execution_date }}", "2024-01-31T00:00:00+00:00|2024-01-31T00:00:00+00:00"),
        ("{{ yesterday_ds }} {{ tomorrow_ds }} {{ next_ds }}", "2024-01-30 2024-02-01 2024-02-01"),
        ("{{ yesterday_ds_nodash }} {{ tomorrow_ds_nodash }} {{ next_ds_nodash }}", "20240130 20240201 20240201"),
        ("{{ data_interval_start.strftime('%Y/%m') }}", "2024/01"),
        ("{{ macros.ds_add(ds, 1) }}", "2024-02-01"),  # month end
        ("{{ macros.ds_add('2024-02-28', 1) }}", "2024-02-29"),  # leap day
        ("{{ macros.ds_add('2023-12-31', 1) }}", "2024-01-01"),  # year end
        ("{{ macros.ds_add(ds, -31) }}", "2023-12-31"),
        ("{{ macros.ds_add(ds, 0) }}", "2024-01-31"),
        ("{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}", "31/01/2024"),
        ("{{ macros.ds_format('20240131', '%Y%m%d', '%Y-%m-%d') }}", "2024-01-31"),
        ("{{ macros.yr(macros.ds_add(ds, 1)) }}", "2024"),
        ("{{ macros.mo(macros.ds_add(ds, 1)) }}", "02"),
        ("{{ macros.dy(macros.ds_add(ds, 1)) }}", "01"),
        ("{{ macros.yr('0999-3-4') }}-{{ macros.mo('2020-3-4') }}-{{ macros.dy('2020-3-4') }}", "0999-03-04"),
        ("{{ macros.dy(data_interval_end) }}", "01"),
        ("{{ (macros.datetime(2024, 1, 1) + macros.timedelta(days=2)).strftime('%Y-%m-%d') }}", "2024-01-03"),
        ("{{ (data_interval_start + macros.timedelta(hours=6)) }}", "2024-01-31T06:00:00+00:00"),
        ("{{ ENV }}", "DEV"),
        ("{{ 80 }}", "80"),
        ("{{ perc }}", "80"),
    ],
)
def test_context_and_macros(template, expected):
    assert r(template, extra={"perc": "80"}) == expected


def test_airflow_readme_templates_dict():
    templates = {
        "dt": "{{ macros.ds_add(ds,1) }}",
        "yr": "{{ macros.yr(macros.ds_add(ds,1)) }}",
        "mo": "{{ macros.mo(macros.ds_add(ds,1)) }}",
        "dy": "{{ macros.dy(macros.ds_add(ds,1)) }}",
        "env": "{{ var.value.ENV }}",
    }
    context = template_context(WINDOW, "BETA", {})
    assert render_templates_dict(templates, context, step="write_to_snowflake") == {
        "dt": "2024-02-01",
        "yr": "2024",
        "mo": "02",
        "dy": "01",
        "env": "BETA",
    }


def test_naive_and_other_timezone_windows_are_utc():
    naive = TimeWindow(start=datetime(2024, 3, 5, 6, 30), end=datetime(2024, 3, 6, 6, 30))
    assert r("{{ ts }}", window=naive) == "2024-03-05T06:30:00+00:00"


def test_unpartitioned_uses_current_date():
    now = datetime(2022, 7, 9, 15, 45, tzinfo=UTC)
    assert r("{{ ds }} {{ ts }} {{ data_interval_end }}", window=None, now=now) == (
        "2022-07-09 2022-07-09T00:00:00+00:00 2022-07-10T00:00:00+00:00"
    )
    today = datetime.now(UTC).date().isoformat()
    assert r("{{ ds }}", window=None) == today


VARIABLES_YML = """\
COMMON:
  CI_STAGING: ci_stage
  CONF: '{"tables": ["a", "b"], "limit": 10}'
DEV:
  CI_STAGING: ci_stage_dev
"""


def test_var_value_and_json_from_variables_yml(tmp_path):
    (tmp_path / "variables.yml").write_text(VARIABLES_YML)
    dev = load_variables(tmp_path, "DEV", environ={})
    assert r("{{ var.value.CI_STAGING }}", variables=dev) == "ci_stage_dev"
    assert r("{{ var.value['CI_STAGING'] }}", variables=dev) == "ci_stage_dev"
    assert r("{{ var.json.CONF.tables[1] }}-{{ var.json.CONF.limit + 1 }}", variables=dev) == "b-11"
    assert r("{{ var.value.get('NOPE', 'fallback') }}", variables=dev) == "fallback"
    local = load_variables(tmp_path, "LOCAL", environ={})
    assert r("{{ var.value.CI_STAGING }}", env="LOCAL", variables=local) == "ci_stage"


def test_env_var_overrides_variables_yml(tmp_path, monkeypatch):
    (tmp_path / "variables.yml").write_text(VARIABLES_YML)
    monkeypatch.setenv("ML_PIPELINES_VAR_CI_STAGING", "from_env")
    monkeypatch.setenv("ML_PIPELINES_VAR_EXTRA_JSON", '{"k": [1]}')
    v = load_variables(tmp_path, "DEV")
    assert r("{{ var.value.CI_STAGING }} {{ var.json.EXTRA_JSON.k[0] }}", variables=v) == "from_env 1"


def test_var_plain_mapping_accepted():
    assert r("{{ var.value.A }}", variables={"A": "x"}) == "x"


def test_missing_variable_names_where_env_and_both_ways(tmp_path):
    v = load_variables(tmp_path, "PROD", environ={})
    with pytest.raises(TemplateRenderError) as exc:
        r("{{ var.value.CI_STAGING }}", env="PROD", variables=v)
    msg = str(exc.value)
    assert msg.startswith("step s, templates_dict.k: ")
    assert "'CI_STAGING'" in msg and "PROD" in msg
    assert "variables.yml" in msg and "ML_PIPELINES_VAR_CI_STAGING" in msg
    with pytest.raises(TemplateRenderError, match="CONF"):
        r("{{ var.json.CONF }}", variables={})


def test_var_json_invalid():
    with pytest.raises(TemplateRenderError, match="var.json.A .*not valid JSON"):
        r("{{ var.json.A }}", variables={"A": "not json"})


def test_strict_undefined_names_where_and_name():
    with pytest.raises(TemplateRenderError) as exc:
        render("{{ dss }}", template_context(WINDOW, "DEV", {}), where="step write_to_snowflake, templates_dict.dt")
    assert (
        str(exc.value)
        == "step write_to_snowflake, templates_dict.dt: undefined: 'dss' is undefined; did you mean 'ds'?"
    )
    assert (exc.value.step, exc.value.key, exc.value.line, exc.value.kind) == (None, None, 1, "undefined")
    with pytest.raises(TemplateRenderError, match="nope"):
        r("{{ macros.nope(ds) }}")


def test_macro_errors_name_where():
    with pytest.raises(TemplateRenderError, match=r"^step s, templates_dict.k: ValueError"):
        r("{{ macros.ds_format(ds, '%d', '%Y') }}")
    with pytest.raises(TemplateRenderError, match="not a YYYY-MM-DD date"):
        r("{{ macros.yr('soon') }}")


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ macros.__class__ }}",
        "{{ macros.datetime.mro() }}",
        "{{ macros.datetime.__subclasses__() }}",
        "{{ macros.ds_add.__globals__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ var.value._values }}",
        "{{ var.__dict__ }}",
        "{% set l = [] %}{{ l.append(1) }}",
        "{% set d = {} %}{{ d.update(a=1) }}",
        "{{ 'a' * 100000000 }}",
        "{{ 9 ** 9999999 }}",
    ],
)
def test_sandbox_blocks_escapes(template):
    with pytest.raises(TemplateRenderError, match="^step s, templates_dict.k: not allowed in a template"):
        r(template)


def test_text_is_not_python():
    assert r("__import__('os').system('echo hi')") == "__import__('os').system('echo hi')"
    with pytest.raises(TemplateRenderError):
        r("{{ __import__('os') }}")


def test_syntax_error_text():
    assert template_syntax_error("{{ macros.ds_add(ds,1) }}") is None
    assert template_syntax_error("plain text") is None
    assert template_syntax_error("{{ ds }") == "line 1: unexpected '}'"
    assert template_syntax_error("a\n{% if x %}").startswith("line 2: Unexpected end of template")
    with pytest.raises(TemplateRenderError, match="template syntax error on line 1"):
        r("{{ ds }")


def test_undeclared_names():
    assert undeclared_names("{{ macros.ds_add(ds, 1) }} {{ dss }}") == {"macros", "ds", "dss"}
    assert undeclared_names("{{ ds }") == set()


def test_autoescape_off_and_newlines_kept():
    assert r("<b>{{ '&' }}</b>\n") == "<b>&</b>\n"
