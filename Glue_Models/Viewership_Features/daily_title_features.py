"""Daily per-title viewing features, written in the usual AWS Glue style.

Reads the raw events CSV of one day and writes one parquet row per title:

    s3://<data_bucket>/<raw_prefix>/dt=<dt>/*.csv
      -> s3://<data_bucket>/<features_prefix>/dt=<dt>/part-*.parquet

Arguments (`--key value`): JOB_NAME (added by the runner), dt (templates_dict), and
data_bucket, raw_prefix, features_prefix (parameters.json). The script builds the
s3:// URIs itself; in LOCAL the `awsglue` compatibility module maps them into the local
storage mirror, so the same script runs unchanged on local PySpark.

Glue sinks append: re-running a day adds a second identical parquet file to its
partition, and readers keep one row per (dt, title_id).
"""

import sys

from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

from title_features import aggregate_title_features

args = getResolvedOptions(sys.argv, ["JOB_NAME", "dt", "data_bucket", "raw_prefix", "features_prefix"])
dt = args["dt"]
source = f"s3://{args['data_bucket']}/{args['raw_prefix'].strip('/')}/dt={dt}/"
target = f"s3://{args['data_bucket']}/{args['features_prefix'].strip('/')}/dt={dt}/"

sc = SparkContext.getOrCreate()
glue_context = GlueContext(sc)
logger = glue_context.get_logger()
job = Job(glue_context)
job.init(args["JOB_NAME"], args)

events = glue_context.create_dynamic_frame.from_options(
    connection_type="s3",
    connection_options={"paths": [source]},
    format="csv",
    format_options={"withHeader": True, "separator": ","},
)
features = aggregate_title_features(events.toDF()).coalesce(1).cache()
logger.info(f"{features.count()} titles from {source}")

glue_context.write_dynamic_frame.from_options(
    frame=DynamicFrame.fromDF(features, glue_context, "title_features"),
    connection_type="s3",
    connection_options={"path": target},
    format="parquet",
)
logger.info(f"wrote title features for {dt} to {target}")
job.commit()
