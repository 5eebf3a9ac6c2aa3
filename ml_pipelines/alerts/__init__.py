"""Alerts: run success, step retry and run failure of each pipeline, to Slack, e-mail or the log.

`notifier.py` the resource interface, its Slack/SMTP/log implementations and their settings
(ML_PIPELINES_SLACK_*, ML_PIPELINES_SMTP_*), bound by `build_notifier` in `environment.py`;
`sensors.py` the code location's one alert sensor (added by `location.py`); `messages.py`
the text.
"""
