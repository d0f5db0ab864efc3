from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predictions.errors import InputError
from predictions.timetext import local_due, local_time
from predictions.validation import (
    end_of_day,
    parse_due,
    parse_outcome,
    parse_probability,
    parse_tag,
    parse_timezone,
    read_due,
    require_text,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.7", 0.7),
        ("70%", 0.7),
        ("70", 0.7),
        ("0.5%", 0.005),
        ("99", 0.99),
        (" 62 % ", 0.62),
        (0.25, 0.25),
    ],
)
def test_parse_probability_accepts_the_three_forms(text: object, expected: float) -> None:
    assert parse_probability(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text", ["0", "1", "100%", "1.5", "-0.1", "abc", "NaN", "nan%", "inf", "100", "", "0%", True]
)
def test_parse_probability_refuses_certainty_and_nonsense(text: object) -> None:
    with pytest.raises(InputError) as info:
        parse_probability(text)
    assert "probability" in str(info.value)
    assert "strictly between 0 and 1" in str(info.value)


NOW = datetime(2026, 11, 23, 13, 0, 0)


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        ("2030-12-31", "UTC", datetime(2030, 12, 31, 23, 59, 59)),
        ("2030-06", "UTC", datetime(2030, 6, 30, 23, 59, 59)),
        ("2030-02", "UTC", datetime(2030, 2, 28, 23, 59, 59)),
        ("2030", "UTC", datetime(2030, 12, 31, 23, 59, 59)),
        ("+90d", "UTC", datetime(2027, 2, 21, 23, 59, 59)),
        ("+2w", "UTC", datetime(2026, 12, 7, 23, 59, 59)),
        ("in 3 months", "UTC", datetime(2027, 2, 23, 23, 59, 59)),
        ("+1y", "UTC", datetime(2027, 11, 23, 23, 59, 59)),
        ("2030-12-31", "Asia/Shanghai", datetime(2030, 12, 31, 15, 59, 59)),
        ("2030-07-01", "America/New_York", datetime(2030, 7, 2, 3, 59, 59)),
        ("2030-01-01", "America/New_York", datetime(2030, 1, 2, 4, 59, 59)),
        ("2030-01-01T10:00:00+02:00", "UTC", datetime(2030, 1, 1, 8, 0, 0)),
    ],
)
def test_parse_due_reads_dates_months_years_and_relative(
    text: str, tz: str, expected: datetime
) -> None:
    assert parse_due(text, now=NOW, tz=parse_timezone(tz)) == expected


@pytest.mark.parametrize(
    "text", ["tomorrow-ish", "2030-13-01", "2030-02-30", "+d", "in 3 fortnights", "", "99999-01-01"]
)
def test_parse_due_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(InputError, match="due"):
        parse_due(text, now=NOW)


# NOW is a Monday, 13:00 UTC (22:00 in Tokyo, where it is Monday too).
@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("today", "2026-11-23"),
        ("Tomorrow", "2026-11-24"),
        ("next friday", "2026-11-27"),
        ("next monday", "2026-11-30"),  # today is Monday: the next one is a week away
        ("wed", "2026-11-25"),
        ("end of week", "2026-11-29"),
        ("end of next week", "2026-12-06"),
        ("end of month", "2026-11-30"),
        ("end of the year", "2026-12-31"),
        ("end of 2027", "2027-12-31"),
        ("end of Feb 2028", "2028-02-29"),
        ("Dec 2027", "2027-12-31"),
        ("sept 2027", "2027-09-30"),
        ("31 Dec 2027", "2027-12-31"),
        ("1st March 2027", "2027-03-01"),
        ("Dec 31, 2027", "2027-12-31"),
        ("  31   dec   2027 ", "2027-12-31"),
    ],
)
def test_read_due_reads_words_as_the_end_of_that_day_in_its_zone(text: str, day: str) -> None:
    for zone in ("UTC", "Asia/Tokyo"):
        tz = parse_timezone(zone)
        due = read_due(text, now=NOW, tz=tz)
        assert due.zone == zone
        assert due.at == end_of_day(date.fromisoformat(day), tz)


def test_read_due_keeps_no_zone_for_a_moment_typed_with_its_time() -> None:
    due = read_due("2030-01-01T10:00", now=NOW, tz=parse_timezone("Asia/Tokyo"))
    assert (due.at, due.zone) == (datetime(2030, 1, 1, 1, 0), None)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("31/12/2027", "use 2027-12-31"),
        ("12/31/2027", "use 2027-12-31"),
        ("01/02/2027", "use 2027-02-01 or 2027-01-02"),
        ("5/5/2027", "use 2027-05-05"),
        ("13/13/2027", "use 2027-MM-DD"),
    ],
)
def test_read_due_refuses_day_month_order_it_would_have_to_guess(text: str, hint: str) -> None:
    with pytest.raises(InputError) as info:
        read_due(text, now=NOW)
    assert str(info.value).startswith(f"due: got {text!r}, expected a date written year first")
    assert str(info.value).endswith(hint)


@pytest.mark.parametrize(
    "text", ["next", "next fortnight", "31 Foo 2027", "30 Feb 2027", "end of", "Dec", "fri 2027"]
)
def test_read_due_refuses_words_it_does_not_know(text: str) -> None:
    with pytest.raises(InputError, match="tomorrow or next friday"):
        read_due(text, now=NOW)


def test_local_time_and_local_due_write_a_time_one_way() -> None:
    chicago = parse_timezone("America/Chicago")
    assert local_time(datetime(2028, 1, 1, 5, 59, 59), chicago) == "2027-12-31 23:59 CST"
    assert local_time("2027-07-01T12:00:00.000000Z", chicago) == "2027-07-01 07:00 CDT"
    assert local_time(None, chicago) == "-"
    utc_day = end_of_day(date(2030, 12, 31), parse_timezone("UTC"))
    assert local_due(utc_day, chicago, "UTC") == "2030-12-31 UTC"
    assert local_due(utc_day, parse_timezone("UTC"), "UTC") == "2030-12-31"
    assert local_due(utc_day, parse_timezone("UTC")) == "2030-12-31"  # no zone kept: as before
    assert local_due(utc_day, chicago) == "2030-12-31 17:59 CST"
    assert local_due(utc_day, chicago, "Not/AZone") == "2030-12-31 17:59 CST"


def test_parse_outcome_and_tags() -> None:
    assert parse_outcome("YES") is True
    assert parse_outcome("no") is False
    with pytest.raises(InputError, match="yes or no"):
        parse_outcome("maybe")
    assert parse_tag("AI-Policy") == "ai-policy"
    assert parse_tag("中国") == "中国"
    with pytest.raises(InputError, match="tag"):
        parse_tag("two words")


def test_require_text_refuses_empty_long_and_control_characters() -> None:
    assert require_text("  x ", "title") == "x"
    with pytest.raises(InputError, match="non-empty"):
        require_text("   ", "title")
    with pytest.raises(InputError, match="at most 500"):
        require_text("x" * 501, "title")
    with pytest.raises(InputError, match="single line"):
        require_text("a\nb", "title", multiline=False)
    with pytest.raises(InputError, match="control"):
        require_text("a\x00b", "criteria")
    assert require_text("多个省级人工智能集群", "title") == "多个省级人工智能集群"


@given(st.text(max_size=40), st.booleans())
@settings(max_examples=2000, deadline=None)
def test_validation_require_text_refuses_exactly_control_characters_and_surrogates(
    value: str, multiline: bool
) -> None:
    """The quick acceptance of printable text refuses nothing the full check accepts, and the
    reverse: any text (surrogates and controls included) is judged by what it holds."""
    import re

    from predictions.validation import require_text

    text = value.strip()
    bad = (
        "[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]"
        if multiline
        else "[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]"
    )
    acceptable = bool(text) and re.search(bad, text) is None
    try:
        got = require_text(value, "note", multiline=multiline)
    except InputError:
        assert not acceptable
    else:
        assert acceptable and got == text
