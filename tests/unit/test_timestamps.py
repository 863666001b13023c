"""The stored timestamp format: shape, parsing, and text order equal to time order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queue_core.timestamps import from_db_text, optional_from_db_text, to_db_text, utc_now

MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.just(timezone.utc),
)


def test_shape_is_space_separated_utc_with_milliseconds() -> None:
    moment = datetime(2024, 5, 1, 23, 59, 59, 123456, tzinfo=timezone.utc)
    assert to_db_text(moment) == "2024-05-01 23:59:59.123"


def test_other_zones_are_converted_to_utc() -> None:
    eastern = timezone(timedelta(hours=-4))
    assert to_db_text(datetime(2024, 5, 1, 20, 0, tzinfo=eastern)) == "2024-05-02 00:00:00.000"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_db_text(datetime(2024, 5, 1))


@pytest.mark.parametrize(
    "text", ["2024-05-01T12:00:00", "2024-05-01 12:00:00+00:00", "2024-05-01", "yesterday",
             "2024-05-01 12:00:00.12", "2024-13-01 12:00:00", "2024-05-01 12:00:00Z"],
)  # fmt: skip
def test_other_shapes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        from_db_text(text)


def test_sqlite_datetime_now_shape_parses() -> None:
    assert from_db_text("2024-05-01 12:00:00") == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert optional_from_db_text(None) is None
    assert utc_now().tzinfo is timezone.utc


@given(MOMENTS)
def test_round_trip_to_the_millisecond(moment: datetime) -> None:
    parsed = from_db_text(to_db_text(moment))
    assert parsed == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@given(MOMENTS, MOMENTS)
def test_text_order_is_time_order(a: datetime, b: datetime) -> None:
    a, b = (m.replace(microsecond=m.microsecond // 1000 * 1000) for m in (a, b))
    assert (to_db_text(a) < to_db_text(b)) == (a < b)
    # SQLite's own datetime('now') shape (no milliseconds) orders with ours too.
    whole = a.replace(microsecond=0).strftime("%Y-%m-%d %H:%M:%S")
    assert (whole <= to_db_text(b)) == (a.replace(microsecond=0) <= b)
