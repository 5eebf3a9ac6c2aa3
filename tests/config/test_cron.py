"""The one cron parser: values per field, and the validator's messages."""

from __future__ import annotations

from datetime import date

import pytest

from ml_pipelines.config.cron import check_cron, parse_cron


def test_values_of_each_field() -> None:
    cron = parse_cron("*/15 6,18 1-5 JAN/6 mon-fri")
    assert cron.minutes == {0, 15, 30, 45}
    assert cron.hours == {6, 18}
    assert cron.days == {1, 2, 3, 4, 5}
    assert cron.months == {1, 7}
    assert cron.weekdays == {1, 2, 3, 4, 5}
    assert cron.day_or  # both day fields restricted
    assert parse_cron("5/20 0 * * *").minutes == {5, 25, 45}  # a start with a step runs to the end


def test_sunday_is_0_or_7() -> None:
    assert parse_cron("0 0 * * 7").weekdays == parse_cron("0 0 * * sun").weekdays == {0}
    assert parse_cron("0 0 * * 5-7").weekdays == {0, 5, 6}


def test_matches_day() -> None:
    weekly = parse_cron("0 0 * * 0")
    assert weekly.matches_day(date(2024, 1, 28)) and not weekly.matches_day(date(2024, 1, 29))
    either = parse_cron("0 0 1 * 1")  # the 1st or a Monday
    assert either.matches_day(date(2024, 2, 1)) and either.matches_day(date(2024, 2, 5))
    assert not either.matches_day(date(2024, 2, 6))
    both = parse_cron("0 0 1 2 *")
    assert both.matches_day(date(2024, 2, 1)) and not both.matches_day(date(2024, 3, 1))


@pytest.mark.parametrize(
    "cron, message",
    [
        ("30 6 * *", "cron '30 6 * *' has 4 fields; write 5 (minute hour day-of-month month day-of-week)"),
        ("61 6 * * *", "cron minute value '61' is outside 0-59"),
        ("0 6 * foo *", "cron month value 'foo' is outside 1-12"),
        ("0 6 * * 1-", "cron day of week field '1-' is not valid"),
        ("*/0 6 * * *", "cron minute step must be at least 1"),
        ("0 20-4 * * *", "cron hour range '20-4' runs backwards"),
    ],
)
def test_errors_name_the_field(cron: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_cron(cron)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "cron, why",
    [
        ("0 0 31 2 *", "February has no day 31"),
        ("0 0 30,31 2 *", "February has no days 30, 31"),
        ("0 0 31 4,6,9,11 *", "April, June, September and November have no day 31"),
    ],
)
def test_a_cron_that_never_fires_is_an_error(cron: str, why: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_cron(cron)
    assert str(exc.value) == f"cron {cron!r} never fires: {why}"


@pytest.mark.parametrize("cron", ["0 0 29 2 *", "0 0 31 2 1", "0 0 31 2,3 *", "0 0 */30 2 *", "0 6 * * *"])
def test_rare_crons_that_do_fire_are_fine(cron: str) -> None:
    check_cron(cron)  # Feb 29 (leap years), Mondays of February, March 31, Feb 1
