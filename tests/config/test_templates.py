import time
import tracemalloc
from datetime import datetime, timezone

import pytest

from ml_pipelines.config.templates import (
    MAX_RENDER_SECONDS,
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
    ],
)
def test_sandbox_blocks_escapes(template):
    with pytest.raises(TemplateRenderError, match="^step s, templates_dict.k: not allowed in a template"):
        r(template)


BOMBS = [
    "{{ 'a' * 100000000 }}",
    "{{ 9 ** 9999999 }}",
    "{{ (9 ** 1000) ** 1000 }}",
    "{% set a = 9 ** 1000 %}{% set b = a * a * a * a * a * a * a * a %}{{ b * b * b * b * b * b * b * b * b * b }}",
    "{{ 'x'.center(8000000000) }}",
    "{{ 'x'.ljust(8000000000) }}{{ 'x'.rjust(8000000000) }}",
    "{{ '1'.zfill(8000000000) }}",
    "{{ 'x' | center(8000000000) }}",
    "{{ ('\\t' * 100000).expandtabs(100000) }}",
    "{{ ('x' * 1000000).replace('', 'yy') }}",
    "{{ ('x' * 1000).join(['a'] * 100000) }}",
    "{{ '{:>8000000000}'.format(1) }}",
    "{{ '{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}'.format('x' * 900000) }}",
    "{{ '%8000000000d' % 1 }}",
    "{{ '%*d' % (8000000000, 1) }}",
    "{{ '%s' | format('x' * 900000) ~ ('x' * 900000) }}",
    "{% set a = 'x' * 900000 %}{{ a + a }}",
    "{% set a = ['x' * 1000] * 1000 %}{{ a + a }}",
    "{% set a = 'x' * 1000000 %}{{ [a] * 1000000 }}",
    "{% set a = 'x' * 1000000 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}{{ b }}",
    "{% set a = 'x' * 1000000 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}{{ b | join }}",
    "{% set a = 'x' * 1000000 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}{{ b | string | length }}",
    "{% set a = 'x' * 1000000 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}{{ b | tojson | length }}",
    "{% set a = 'x' * 1000000 %}{% set b = a ~ a ~ a ~ a ~ a %}{{ b | length }}",
    "{{ ('x' * 1000000) | indent(1000000) }}",
    "{{ ('x\\n' * 500000) | indent('y' * 1000) | length }}",
    "{{ ('x ' * 500000) | wordwrap(1, wrapstring='y' * 1000) | length }}",
    "{{ ('x' * 1000000) | replace('x', 'yy') | length }}",
    "{{ [1] | batch(100000000, 'x') | list | length }}",
    "{{ [1] | slice(100000000) | list | length }}",
    "{{ lipsum(100000000) | length }}",
    "{% set b = [['x'] * 1000000] * 10 %}{{ b | sum(start=[]) | length }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for c in 'x' * 1000000 %}{% for d in 'x' * 1000000 %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",
    "{% set s %}{% for i in range(100000) %}{% for j in range(9) %}{{ 'x' * 9000 }}{% endfor %}{% endfor %}{% endset %}",
    "{% set s %}{% for i in range(100000) %}{% for j in range(9) %}"
    + "x" * 1000
    + "{% endfor %}{% endfor %}{% endset %}",
    "{% macro m() %}{% for i in range(10000) %}{{ 'x' * 9999 }}{% endfor %}{% endmacro %}{{ m() | length }}",
    "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = ns.l + ['x' * 999] %}{% endfor %}",
    "{% set ns = namespace(s='x' * 900000) %}{% set ns.t = [ns.s] * 2 %}{{ ns }}",
    "{% macro f(n) %}{% for i in range(10) %}{{ f(n + 1) }}{% endfor %}{% endmacro %}{{ f(0) }}",
]


@pytest.mark.parametrize("template", BOMBS)
def test_template_bombs_stop_in_bounded_time_and_memory(template):
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(TemplateRenderError) as info:
            r(template)
        elapsed = time.monotonic() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < MAX_RENDER_SECONDS + 1.0, info.value
    assert peak < 200_000_000, info.value
    assert info.value.kind in ("limit", "error"), info.value  # "error": Python's own RecursionError


def test_limit_errors_say_which_limit():
    with pytest.raises(TemplateRenderError, match="template output longer than 1,000,000 characters") as info:
        r("{% for i in range(2000) %}{{ 'x' * 999 }}{% endfor %}")
    assert info.value.kind == "limit"
    with pytest.raises(TemplateRenderError, match="loops ran more than 1,000,000 iterations"):
        r("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    with pytest.raises(TemplateRenderError, match="width 8000000000 is larger than 1,000,000"):
        r("{{ 'x'.center(8000000000) }}")
    start = time.monotonic()
    with pytest.raises(TemplateRenderError, match="template took longer than 2 s to render"):
        r(
            "{% for i in range(1000) %}{% for j in range(1000) %}{{ ('x' * 999999) | replace('x', 'y') | length }}{% endfor %}{% endfor %}"
        )
    assert time.monotonic() - start < MAX_RENDER_SECONDS + 1.0


def test_templates_below_the_limits_render_as_before():
    assert r("{{ 'x'.center(5) }}|{{ '%05d' % 42 }}|{{ '{:>4}'.format(7) }}|{{ 'a-b' | replace('-', '') }}") == (
        "  x  |00042|   7|ab"
    )
    assert r("{{ ['a', 'b'] | join(',') }}{{ ','.join(['c', 'd']) }}{{ 'e' ~ 1 }}{{ [1] + [2] }}") == "a,bc,de1[1, 2]"
    assert r("{% for i in range(3) %}{{ loop.index }}/{{ loop.length }} {% endfor %}") == "1/3 2/3 3/3 "
    assert r("{% for x in [] %}x{% else %}empty{% endfor %}") == "empty"
    assert len(r("{{ 'x' * 1000000 }}")) == 1_000_000
    assert len(r("{% for i in range(999) %}{{ 'x' * 1000 }}{% endfor %}")) == 999_000
    assert r("{{ 2 ** 10 }} {{ 3 * 4 }} {{ 'ab' * 2 }} {{ 7 % 3 }}") == "1024 12 abab 1"


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
