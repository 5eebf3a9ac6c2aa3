"""Helpers shared by the Content_Forecast notebooks (importable because lib/ is on the path).

Features come from the `max_ds_ViewershipFeatures` pipeline: one parquet partition per day,
`<features_path>/dt=<YYYY-MM-DD>/`, one row per title. `features_path` is a local folder in
LOCAL and an s3:// URI on AWS; pyarrow's file systems read both.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import pandas as pd
import pyarrow.parquet as pq
from pyarrow import fs

FORECAST_COLUMNS = [
    "DT",
    "FORECAST_DATE",
    "TITLE_ID",
    "PREDICTED_VIEWS",
    "PREDICTED_MINUTES",
    "DAYS_OF_HISTORY",
    "MODEL_VERSION",
]


def _filesystem(path: str) -> tuple[fs.FileSystem, str]:
    if "://" not in path:
        path = os.path.abspath(path)
    return fs.FileSystem.from_uri(path)


def read_feature_history(features_path: str, dt: str, lookback_days: int) -> pd.DataFrame:
    """The features of the `lookback_days` days ending on `dt` (missing earlier days are
    skipped), with a `dt` column. The day `dt` itself must exist.

    Glue sinks append, so a re-run day may hold the same rows twice: one row per
    (dt, title_id) is kept.
    """
    filesystem, root = _filesystem(features_path)
    end = date.fromisoformat(dt)
    frames = []
    for offset in range(int(lookback_days) - 1, -1, -1):
        day = (end - timedelta(days=offset)).isoformat()
        folder = f"{root.rstrip('/')}/dt={day}"
        if filesystem.get_file_info(folder).type != fs.FileType.Directory:
            if day == dt:
                raise FileNotFoundError(
                    f"no features for {dt} under {features_path}: materialize "
                    f"max_ds_ViewershipFeatures for {dt} first"
                )
            continue
        files = [
            info.path
            for info in filesystem.get_file_info(fs.FileSelector(folder))
            if info.type == fs.FileType.File and info.base_name.endswith(".parquet")
            and not info.base_name.startswith((".", "_"))
        ]
        for path in sorted(files):
            frame = pq.read_table(path, filesystem=filesystem).to_pandas()
            frame.insert(0, "dt", day)
            frames.append(frame)
    history = pd.concat(frames, ignore_index=True)
    return history.drop_duplicates(["dt", "title_id"], keep="last").sort_values(["dt", "title_id"]).reset_index(drop=True)


def _frame(dt: str, per_title: pd.DataFrame, model_version: str) -> pd.DataFrame:
    forecast_date = (date.fromisoformat(dt) + timedelta(days=1)).isoformat()
    out = pd.DataFrame(
        {
            "DT": dt,
            "FORECAST_DATE": forecast_date,
            "TITLE_ID": per_title.index,
            "PREDICTED_VIEWS": per_title["views"].round(2).to_numpy(),
            "PREDICTED_MINUTES": per_title["minutes"].round(1).to_numpy(),
            "DAYS_OF_HISTORY": per_title["days"].astype(int).to_numpy(),
            "MODEL_VERSION": model_version,
        }
    )
    return out[FORECAST_COLUMNS].sort_values("TITLE_ID").reset_index(drop=True)


def moving_average_forecast(history: pd.DataFrame, dt: str, model_version: str) -> pd.DataFrame:
    """Next-day views and minutes per title: the mean over the days of history."""
    grouped = history.groupby("title_id")
    per_title = pd.DataFrame(
        {
            "views": grouped["views"].mean(),
            "minutes": grouped["total_minutes"].mean(),
            "days": grouped["dt"].nunique(),
        }
    )
    return _frame(dt, per_title, model_version)


def smoothed_forecast(
    history: pd.DataFrame, dt: str, model_version: str, alpha: float, engagement_weight: float
) -> pd.DataFrame:
    """Exponentially smoothed views (weight `alpha` on the newest day), nudged up for titles
    watched longer than average and down for shorter ones by `engagement_weight`."""
    alpha, engagement_weight = float(alpha), float(engagement_weight)
    rows = {}
    overall_avg = history["avg_minutes"].mean()
    for title_id, frame in history.sort_values("dt").groupby("title_id"):
        views = frame["views"].ewm(alpha=alpha, adjust=False).mean().iloc[-1]
        minutes = frame["total_minutes"].ewm(alpha=alpha, adjust=False).mean().iloc[-1]
        engagement = frame["avg_minutes"].mean() / overall_avg - 1.0
        factor = max(0.0, 1.0 + engagement_weight * engagement)
        rows[title_id] = {"views": views * factor, "minutes": minutes * factor, "days": frame["dt"].nunique()}
    per_title = pd.DataFrame.from_dict(rows, orient="index")
    return _frame(dt, per_title, model_version)


def write_forecast(forecast: pd.DataFrame, output_dir: str, dt: str) -> str:
    """`<output_dir>/forecast_<dt>.csv` with a header row; returns its path."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, f"forecast_{dt}.csv")
    forecast.to_csv(path, index=False)
    return path
