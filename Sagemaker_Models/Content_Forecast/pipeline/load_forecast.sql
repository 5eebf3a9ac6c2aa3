-- Loads the V1 notebook's forecast for one day into FORECASTS.CONTENT_FORECAST_DAILY.
--
-- Rendered per run: `dt` comes from the step's templates_dict, `ENV` and
-- `var.value.CI_STAGING` (the stage's name, per environment) from the template context.
-- The stage points at the root of the notebooks' model bucket, so the path below it is the
-- notebook's output location: sagemaker-models-<env>/<model_name>/<notebook>/output/.
-- Re-running a day replaces that day's rows: the DELETE removes them and FORCE = TRUE
-- reloads the file even though the table's load history says it was loaded before.

CREATE TABLE IF NOT EXISTS CONTENT_FORECAST_DAILY (
    DT DATE,
    FORECAST_DATE DATE,
    TITLE_ID VARCHAR,
    PREDICTED_VIEWS NUMBER(12, 2),
    PREDICTED_MINUTES NUMBER(14, 1),
    DAYS_OF_HISTORY INTEGER,
    MODEL_VERSION VARCHAR
);

DELETE FROM CONTENT_FORECAST_DAILY WHERE DT = '{{ dt }}';

COPY INTO CONTENT_FORECAST_DAILY
FROM @{{ var.value.CI_STAGING }}/sagemaker-models-{{ ENV | lower }}/Content_Forecast/ContentForecast_V1/output/
FILES = ('forecast_{{ dt }}.csv')
FILE_FORMAT = (TYPE = CSV SKIP_HEADER = 1)
FORCE = TRUE;
