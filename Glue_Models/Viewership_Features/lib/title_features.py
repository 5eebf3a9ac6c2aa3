"""The per-title aggregation of the daily_title_features Glue script.

Kept in lib/ so it can be tested with a plain SparkSession, without Glue.
"""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

FEATURE_COLUMNS = ("title_id", "views", "unique_viewers", "total_minutes", "avg_minutes", "tv_share")


def aggregate_title_features(events: DataFrame) -> DataFrame:
    """One row per title from raw events (CSV columns arrive as text)."""
    typed = events.withColumn("minutes_watched", F.col("minutes_watched").cast("double"))
    return (
        typed.groupBy("title_id")
        .agg(
            F.count(F.lit(1)).alias("views"),
            F.countDistinct("user_id").alias("unique_viewers"),
            F.round(F.sum("minutes_watched"), 1).alias("total_minutes"),
            F.round(F.avg("minutes_watched"), 2).alias("avg_minutes"),
            F.round(F.avg(F.when(F.col("device") == "tv", 1.0).otherwise(0.0)), 3).alias("tv_share"),
        )
        .select(*FEATURE_COLUMNS)
        .orderBy("title_id")
    )
