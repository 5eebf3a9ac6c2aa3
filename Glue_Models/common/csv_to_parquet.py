"""Shared Glue job: copy a folder of CSV files (with a header row) to parquet.

Any model can run it with `script_loc: common` and `script_name: csv_to_parquet`.

Arguments (`--key value`):
  source_path   s3:// folder of CSV files
  target_path   s3:// folder to write parquet to (Glue sinks append)
  compression   parquet compression (parameters.json COMMON: snappy)
"""

import sys

from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "source_path", "target_path", "compression"])

sc = SparkContext.getOrCreate()
glue_context = GlueContext(sc)
logger = glue_context.get_logger()
job = Job(glue_context)
job.init(args["JOB_NAME"], args)

rows = glue_context.create_dynamic_frame.from_options(
    connection_type="s3",
    connection_options={"paths": [args["source_path"]]},
    format="csv",
    format_options={"withHeader": True},
)
frame = DynamicFrame.fromDF(rows.toDF().coalesce(1), glue_context, "rows")
glue_context.write_dynamic_frame.from_options(
    frame=frame,
    connection_type="s3",
    connection_options={"path": args["target_path"]},
    format="parquet",
    format_options={"compression": args["compression"]},
)
logger.info(f"copied {args['source_path']} to {args['target_path']} as parquet")
job.commit()
