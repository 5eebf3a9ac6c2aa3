"""LOCAL warehouse backend: real fakesnow server, reached through SnowflakeResource and the
real Snowflake connector, run through Dagster."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from dagster import AssetExecutionContext, DagsterInstance, ExecuteInProcessResult

from ml_pipelines.local.snowflake_sql import translate_copy, written_tables
from ml_pipelines.local.storage import LocalStorage, s3_to_local
from ml_pipelines.local.warehouse import LocalWarehouse, split_sql
from ml_pipelines.plan.model import SqlPlan, SqlStatementFile
from ml_pipelines.steps import StepOutcome

from .fixtures.helpers import FIXTURES, failure_text, run_identity, run_step, step_metadata

SQL_DIR = FIXTURES / "sql_pipeline"
STAGE_URI = "s3://models-bkt/sagemaker-models-local/demo_model/report/"


@pytest.fixture()
def backend(tmp_path: Path) -> LocalWarehouse:
    storage = tmp_path / "storage"
    stage_dir = s3_to_local(STAGE_URI, storage)
    files = {
        "output/sales/2024-01-01/part-0.csv": "id,region,amount\n1,north,10.0\n2,south,20.0\n",
        "output/sales/2024-01-02/part-0.csv": "id,region,amount\n3,north,5.5\n",
        "output/sales/2024-01-01/.part-0.csv.crc": "not,a,csv\x00",  # local-only checksum: skipped
        "output/unrelated.csv": "id,region,amount\n99,elsewhere,0\n",
    }
    for rel, text in files.items():
        (stage_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (stage_dir / rel).write_text(text)
    return LocalWarehouse(
        home=str(tmp_path / "home"), storage=LocalStorage(root=str(storage)), stages={"model_stage": STAGE_URI}
    )


def sql_plan(*names: str) -> SqlPlan:
    files = tuple(SqlStatementFile(name=n, path=SQL_DIR / n, text=(SQL_DIR / n).read_text()) for n in names)
    return SqlPlan(run=run_identity("write_to_snowflake_sales"), schema="analytics", files=files)


def run_sql(backend: LocalWarehouse, plan: SqlPlan, instance: DagsterInstance) -> ExecuteInProcessResult:
    def call(b: LocalWarehouse, ctx: AssetExecutionContext) -> StepOutcome:
        return b.run(ctx, plan)

    return run_step(backend, call, instance)


def query(backend: LocalWarehouse, sql: str) -> list[tuple]:
    """A fresh server process and connection, as a user or the next step would open them."""
    with backend.snowflake_resource() as resource, resource.get_connection() as conn:
        return conn.cursor().execute(sql).fetchall()


def test_copy_from_stage_subpath_insert_and_ctas(backend: LocalWarehouse, instance: DagsterInstance) -> None:
    result = run_sql(backend, sql_plan("load_sales.sql", "load_first_day.sql"), instance)

    assert result.success, failure_text(result)
    meta = step_metadata(result)
    assert [(s["file"], s["statement"].split()[0], s["rowcount"]) for s in meta["statements"]] == [
        ("load_sales.sql", "ALTER", None),
        ("load_sales.sql", "CREATE", None),
        ("load_sales.sql", "COPY", 3),
        ("load_sales.sql", "INSERT", 1),
        ("load_sales.sql", "CREATE", None),  # CTAS: see table_row_counts
        ("load_first_day.sql", "CREATE", None),
        ("load_first_day.sql", "COPY", 2),
    ]
    assert meta["table_row_counts"] == {
        "ML_PIPELINES.ANALYTICS.SALES": 4,
        "ML_PIPELINES.ANALYTICS.SALES_BY_REGION": 3,
        "ML_PIPELINES.ANALYTICS.SALES_FIRST_DAY": 2,
    }
    assert (meta["database"], meta["schema"]) == ("ML_PIPELINES", "analytics")

    rows = query(backend, "SELECT id, region, amount FROM ml_pipelines.analytics.sales ORDER BY id")
    assert rows == [(1, "north", 10.0), (2, "south", 20.0), (3, "north", 5.5), (100, "manual; with a semicolon", 1.5)]
    totals = query(backend, "SELECT region, total FROM ml_pipelines.analytics.sales_by_region ORDER BY region")
    assert totals == [("manual; with a semicolon", 1.5), ("north", 15.5), ("south", 20.0)]


def test_tables_persist_across_server_restarts(backend: LocalWarehouse, instance: DagsterInstance) -> None:
    first = run_sql(backend, sql_plan("load_sales.sql"), instance)
    assert first.success, failure_text(first)

    second = run_sql(backend, sql_plan("summarise.sql", "load_sales.sql"), instance)  # a new server process

    assert second.success, failure_text(second)
    meta = step_metadata(second)
    assert meta["table_row_counts"]["ML_PIPELINES.ANALYTICS.SALES_SUMMARY"] == 1
    copy = next(s for s in meta["statements"] if s["statement"].startswith("COPY"))
    assert copy["rowcount"] == 0  # as in Snowflake: files already loaded into the table are skipped
    assert meta["table_row_counts"]["ML_PIPELINES.ANALYTICS.SALES"] == 5  # 4 + the second INSERT
    assert query(backend, "SELECT n, total FROM ml_pipelines.analytics.sales_summary") == [(4, 37.0)]
    assert (Path(backend.home) / "warehouse" / "ML_PIPELINES.db").is_file()


def test_failing_statement_names_file_statement_and_error(backend: LocalWarehouse, instance: DagsterInstance) -> None:
    result = run_sql(backend, sql_plan("load_first_day.sql", "broken.sql"), instance)

    assert not result.success
    text = failure_text(result)
    assert "SQL file broken.sql: statement failed in the LOCAL warehouse" in text
    assert "INSERT INTO no_such_table SELECT a FROM scratch" in text
    assert "NO_SUCH_TABLE does not exist" in text


def test_copy_translation_follows_snowflake_stage_paths(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    for rel in ("out/sales/a.csv", "out/sales/deep/b.csv", "out/sales_extra.csv", "out/.hidden.csv", "other.csv"):
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        (stage / rel).write_text("x\n")
    stages = {"ST": (stage, "prefix/")}

    def files(sql: str) -> list[str] | None:
        translated = translate_copy(sqlglot.parse_one(sql, read="snowflake"), stages)
        return None if translated is None else translated[1]

    assert files("COPY INTO t FROM @st/out/sales/") == ["out/sales/a.csv", "out/sales/deep/b.csv"]
    assert files("COPY INTO t FROM @st/out/sales") == ["out/sales/a.csv", "out/sales/deep/b.csv", "out/sales_extra.csv"]
    assert files("COPY INTO t FROM @st/out/sales/a.csv") == ["out/sales/a.csv"]
    assert files("COPY INTO t FROM @ST PATTERN='.*deep/.*'") == ["out/sales/deep/b.csv"]
    assert files("COPY INTO t FROM @st PATTERN='prefix/other[.]csv'") == ["other.csv"]  # key below the bucket
    assert files("COPY INTO t FROM @st/nothing/") == []
    assert files("COPY INTO t FROM @st FILES=('other.csv')") is None  # fakesnow handles FILES itself
    assert files("COPY INTO t FROM @unknown_stage/out/") is None
    sql, _ = translate_copy(
        sqlglot.parse_one(
            "COPY INTO t (a) FROM (SELECT $1 FROM @st/out/sales/deep) FILE_FORMAT=(TYPE=CSV)", read="snowflake"
        ),
        stages,
    ) or ("", [])
    assert sql == "COPY INTO t (a) FROM (SELECT $1 FROM @st) FILE_FORMAT = (TYPE=CSV) FILES = ('out/sales/deep/b.csv')"


def test_split_and_written_tables() -> None:
    statements = split_sql((SQL_DIR / "load_sales.sql").read_text())
    assert len(statements) == 5 and statements[3].startswith("INSERT") and "'manual; with a semicolon'" in statements[3]
    targets = [[t.name for t in written_tables(sqlglot.parse_one(s, read="snowflake"))] for s in statements]
    assert targets == [[], [], ["sales"], ["sales"], ["sales_by_region"]]
    for sql, name in [
        ("MERGE INTO db.s.t AS x USING src ON x.a = src.a WHEN MATCHED THEN DELETE", "t"),
        ("UPDATE t2 SET a = 1", "t2"),
        ("DELETE FROM t3 WHERE a = 1", "t3"),
    ]:
        assert [t.name for t in written_tables(sqlglot.parse_one(sql, read="snowflake"))] == [name]
