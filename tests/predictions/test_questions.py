import math
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from predictions.errors import InputError
from predictions.questions import (
    GRID,
    MIN_BIN_MASS,
    MIN_TAIL_MASS,
    Question,
    cdf_from_quantiles,
    check_cdf,
    check_outcome_value,
    check_probabilities,
    format_value,
    median,
    parse_date,
    parse_forecast,
    parse_options,
    parse_outcome_value,
    parse_range,
    quantile,
    rounded,
    sparkline,
    summary,
)

NUMERIC = parse_range("numeric", "0..34")
OPEN = parse_range("numeric", "0..34", open_bounds="both")
LOG = parse_range("numeric", "1..1000", log=True)
DATES = parse_range("date", "2026-01-01..2035-12-31")
LABS = parse_options("DeepSeek,Alibaba Qwen,Moonshot,Zhipu,Other")


def _day(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_parse_range_reads_numbers_dates_bounds_and_log() -> None:
    assert Question("numeric", 0.0, 34.0) == NUMERIC
    assert parse_range("numeric", "-5..1e3", open_bounds="upper") == Question(
        "numeric", -5.0, 1000.0, open_upper=True
    )
    assert LOG.log and LOG.lower == 1.0
    assert DATES.lower == _day("2026-01-01") and DATES.upper == _day("2035-12-31")
    assert parse_range("date", "2026..2036-06").upper == _day("2036-06-01")


@pytest.mark.parametrize("question", [NUMERIC, OPEN, LOG, DATES, LABS])
def test_question_spec_round_trips(question: Question) -> None:
    assert Question.from_spec(question.kind, question.spec()) == question


@pytest.mark.parametrize(
    ("kind", "text", "options", "field"),
    [
        ("numeric", "5..1", {}, "range"),
        ("numeric", "3..3", {}, "range"),
        ("numeric", "0-34", {}, "range"),
        ("numeric", "a..b", {}, "range"),
        ("numeric", "0..inf", {}, "range"),
        ("date", "2030..2026", {}, "range"),
        ("date", "2026-13..2030", {}, "range"),
        ("numeric", "0..34", {"open_bounds": "sideways"}, "open"),
        ("numeric", "0..34", {"log": True}, "log"),
        ("date", "2026..2030", {"log": True}, "log"),
        ("binary", "0..1", {}, "kind"),
    ],
)
def test_parse_range_refuses_bad_ranges_naming_the_field(
    kind: str, text: str, options: dict[str, object], field: str
) -> None:
    with pytest.raises(InputError) as caught:
        parse_range(kind, text, **options)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_parse_options_reads_names_and_refuses_bad_lists() -> None:
    assert LABS.options[1] == "Alibaba Qwen" and not LABS.ordered
    assert parse_options("low, mid, high", ordered=True).ordered
    for bad in ("only", "a,,b", "a,A", ",".join(str(i) for i in range(31))):
        with pytest.raises(InputError) as caught:
            parse_options(bad)
        assert caught.value.field == "options"


def test_parse_date_reads_a_date_as_its_first_moment() -> None:
    assert parse_date("2030", "x") == _day("2030-01-01")
    assert parse_date("2027-06", "x") == _day("2027-06-01")
    assert parse_date("2028-06-30", "x") == _day("2028-06-30")
    assert parse_date("2028-06-30T12:00+02:00", "x") == _day("2028-06-30T10:00")
    with pytest.raises(InputError, match="x: got '30/06/2028'"):
        parse_date("30/06/2028", "x")


def test_parse_forecast_quantiles_make_a_valid_cdf_through_them() -> None:
    cdf = parse_forecast(NUMERIC, "10%=4,50%=8,90%=15")
    check_cdf(NUMERIC, cdf)
    assert cdf == rounded(cdf) and cdf[0] == 0.0 and cdf[-1] == 1.0
    step = 34 / (GRID - 1)
    for p, x in ((0.1, 4), (0.5, 8), (0.9, 15)):
        assert quantile(NUMERIC, cdf, p) == pytest.approx(x, abs=step)
    assert summary(NUMERIC, cdf) == "median 8"


def test_parse_forecast_open_bounds_keep_a_tail_mass() -> None:
    cdf = parse_forecast(OPEN, "10%=-2,50%=8,90%=40")  # beyond both open bounds
    check_cdf(OPEN, cdf)
    assert cdf[0] > 0.1 and 1 - cdf[-1] > 0.1
    thin = parse_forecast(OPEN, "10%=10,50%=12,90%=14")
    assert thin[0] == MIN_TAIL_MASS and 1 - thin[-1] == pytest.approx(MIN_TAIL_MASS)


def test_parse_forecast_dates_and_named_distributions() -> None:
    cdf = parse_forecast(DATES, "25%=2027-06,50%=2028-06-30,75%=2030")
    assert summary(DATES, cdf) in ("median 2028-06-29", "median 2028-06-30", "median 2028-07-01")
    normal = parse_forecast(NUMERIC, "normal:8,3")
    assert median(NUMERIC, normal) == pytest.approx(8, abs=0.2)
    assert quantile(NUMERIC, normal, 0.8413) == pytest.approx(11, abs=0.2)
    lognormal = parse_forecast(LOG, "lognormal:3,1")
    assert median(LOG, lognormal) == pytest.approx(math.exp(3), rel=0.02)
    dated = parse_forecast(DATES, "normal:2030-01-01,365")
    assert format_value(DATES, median(DATES, dated)) in ("2029-12-31", "2030-01-01")
    uniform = parse_forecast(NUMERIC, "uniform")
    assert median(NUMERIC, uniform) == pytest.approx(17)


def test_parse_forecast_choice_reads_percents_and_fractions_and_normalises() -> None:
    assert parse_forecast(LABS, "35,30,15,10,10") == (0.35, 0.3, 0.15, 0.1, 0.1)
    assert parse_forecast(LABS, "35%,30%,15%,10%,10%") == (0.35, 0.3, 0.15, 0.1, 0.1)
    assert parse_forecast(LABS, "0.35,0.3,0.15,0.1,0.1") == (0.35, 0.3, 0.15, 0.1, 0.1)
    near = parse_forecast(LABS, "35,30,15,10,10.4")
    assert math.fsum(near) == pytest.approx(1, abs=1e-5) and near[4] == pytest.approx(
        10.4 / 100.4, abs=1e-6
    )
    assert summary(LABS, near) == "DeepSeek 34.9%"


@pytest.mark.parametrize(
    ("question", "text", "field"),
    [
        (NUMERIC, "10%=4,50%=8", "quantiles"),  # two quantiles
        (NUMERIC, "10%=4,50%=3,90%=15", "quantiles"),  # values out of order
        (NUMERIC, "10%=4,10%=8,90%=15", "quantiles"),  # a tie
        (NUMERIC, "10%=0,50%=8,90%=15", "quantiles"),  # on a closed bound
        (NUMERIC, "10%=4,50%=8,90%=40", "quantiles"),  # beyond a closed bound
        (OPEN, "0%=4,50%=8,90%=15", "quantiles"),  # certainty
        (OPEN, "10%=4,50%=8,100%=15", "quantiles"),
        (NUMERIC, "10%=four,50%=8,90%=15", "quantiles"),
        (NUMERIC, "ten=4,50%=8,90%=15", "quantiles"),
        (NUMERIC, "4,8,15", "quantiles"),
        (NUMERIC, "", "quantiles"),
        (DATES, "25%=2027-13,50%=2028,75%=2030", "quantiles"),
        (DATES, "25%=2025,50%=2028,75%=2030", "quantiles"),  # before the range
        (NUMERIC, "normal:8", "distribution"),
        (NUMERIC, "normal:8,0", "distribution"),
        (NUMERIC, "normal:500,1", "distribution"),  # no mass inside the closed range
        (NUMERIC, "uniform:1,2", "distribution"),
        (DATES, "lognormal:3,1", "distribution"),
        (LABS, "35,30,15,10", "probabilities"),
        (LABS, "35,30,15,10,5", "probabilities"),  # sums to 95
        (LABS, "35,30,15,20,0", "probabilities"),  # an option at 0
        (LABS, "35,30,15,30,-10", "probabilities"),
        (LABS, "35%,30,15,10,10", "probabilities"),  # mixed forms
        (LABS, "a,b,c,d,e", "probabilities"),
    ],
)
def test_parse_forecast_refuses_bad_input_naming_the_field(
    question: Question, text: str, field: str
) -> None:
    with pytest.raises(InputError) as caught:
        parse_forecast(question, text)
    assert caught.value.field == field
    assert caught.value.expected


def _valid(question: Question) -> tuple[float, ...]:
    return parse_forecast(question, "10%=4,50%=8,90%=15")


@pytest.mark.parametrize(
    ("question", "values", "says"),
    [
        (NUMERIC, _valid(NUMERIC)[:-1], "201 values"),
        (NUMERIC, (*_valid(NUMERIC)[:50], 0.2, *_valid(NUMERIC)[51:]), "nondecreasing"),
        (NUMERIC, tuple(min(1.0, k / 100) for k in range(GRID)), "at least 5e-05"),
        (NUMERIC, (0.01, *_valid(NUMERIC)[1:]), "closed bound"),
        (NUMERIC, (*_valid(NUMERIC)[:-1], 0.999), "closed bound"),
        (OPEN, _valid(NUMERIC), "open bound"),
        (NUMERIC, (*_valid(NUMERIC)[:-1], math.nan), "values in 0..1"),
    ],
)
def test_check_cdf_refuses_what_may_not_be_stored(
    question: Question, values: tuple[float, ...], says: str
) -> None:
    with pytest.raises(InputError, match=says) as caught:
        check_cdf(question, values)
    assert caught.value.field == "cdf"


def test_check_cdf_allows_the_rounding_of_stored_values() -> None:
    bins = [round(k * MIN_BIN_MASS, 6) for k in range(GRID - 1)]  # 4.9e-05 / 5.1e-05 steps
    check_cdf(NUMERIC, (*bins, 1.0))


def test_check_probabilities_refuses_bad_vectors() -> None:
    check_probabilities(LABS, (0.35, 0.3, 0.15, 0.1, 0.1))
    for bad in [(0.5, 0.5), (0.6, 0.3, 0.15, 0.1, 0.1), (0.3995, 0.3, 0.2, 0.1, 0.0005)]:
        with pytest.raises(InputError) as caught:
            check_probabilities(LABS, bad)
        assert caught.value.field == "probabilities"


def test_outcome_values_numbers_dates_and_options() -> None:
    assert parse_outcome_value(NUMERIC, "11") == 11.0
    assert parse_outcome_value(OPEN, "-3") == -3.0  # beyond an open bound: stored as given
    assert parse_outcome_value(DATES, "2029-03-04") == _day("2029-03-04")
    assert parse_outcome_value(LABS, "moonshot") == 2.0
    assert parse_outcome_value(LABS, "5") == 4.0
    check_outcome_value(LABS, 4.0)
    for question, text in [
        (NUMERIC, "35"),
        (NUMERIC, "eleven"),
        (NUMERIC, "nan"),
        (DATES, "2036"),
        (LABS, "OpenAI"),
        (LABS, "6"),
        (LABS, "0"),
    ]:
        with pytest.raises(InputError) as caught:
            parse_outcome_value(question, text)
        assert caught.value.field == "value"
    for value in (5.0, 1.5, -1.0):
        with pytest.raises(InputError, match="value"):
            check_outcome_value(LABS, value)


def test_format_value_is_compact() -> None:
    assert [format_value(NUMERIC, x) for x in (8.0, 8.1234, 12345.678, 0.000012, 0.0)] == [
        "8",
        "8.123",
        "12346",
        "1.2e-05",
        "0",
    ]
    assert format_value(DATES, _day("2028-06-14T13:00")) == "2028-06-14"
    assert format_value(LABS, 1.0) == "Alibaba Qwen"


def test_summary_of_a_median_beyond_a_bound() -> None:
    below = parse_forecast(OPEN, "60%=-5,70%=2,90%=15")
    assert summary(OPEN, below) == "median < 0"


def test_sparkline_draws_the_density_and_the_options() -> None:
    line = sparkline(parse_forecast(NUMERIC, "normal:17,3"))
    assert len(line) == 40 and line[0] == "▁" and "█" in line[18:22]
    assert sparkline((0.35, 0.3, 0.15, 0.1, 0.1)) == "█▇▄▃▃"


@st.composite
def _questions(draw: st.DrawFn) -> Question:
    lower = draw(st.floats(0.5, 100))
    upper = lower * draw(st.floats(1.5, 1000))
    return Question(
        "numeric",
        lower,
        upper,
        open_lower=draw(st.booleans()),
        open_upper=draw(st.booleans()),
        log=draw(st.booleans()),
    )


@st.composite
def _quantiles(draw: st.DrawFn, question: Question, gap: float) -> list[tuple[float, float]]:
    """Three to seven quantiles, their probabilities ``gap`` apart at least, each inside the range
    or beyond an open bound."""
    n = draw(st.integers(3, 7))
    ps = sorted(draw(st.sets(st.integers(1, 99), min_size=n, max_size=n)))
    assume(all(b - a >= gap * 100 for a, b in zip(ps, ps[1:], strict=False)))
    assume(ps[0] >= gap * 100 and ps[-1] <= 100 - gap * 100)
    low = -0.5 if question.open_lower else 0.001
    high = 1.5 if question.open_upper else 0.999
    us = sorted(draw(st.sets(st.floats(low, high), min_size=n, max_size=n)))
    assume(all(b - a > 1e-6 for a, b in zip(us, us[1:], strict=False)))
    return [(p / 100, question.unscaled(u)) for p, u in zip(ps, us, strict=True)]


@given(st.data())
def test_any_valid_quantiles_make_a_cdf_that_passes_check_cdf(data: st.DataObject) -> None:
    question = data.draw(_questions())
    points = data.draw(_quantiles(question, 0.0))
    cdf = cdf_from_quantiles(question, points)
    check_cdf(question, cdf)
    assert cdf == rounded(cdf)
    for p, x in points:  # the given probability, between the grid points around it, up to the
        u = question.scaled(x)  # floors mixed in (1% over the range, 0.1% beyond each open bound)
        if 0 <= u < 1:
            k = int(u * (GRID - 1))
            assert cdf[k] <= p + 0.0125 and cdf[k + 1] >= p - 0.0125


@given(st.data())
def test_quantiles_above_the_floors_are_reproduced_to_the_grid(data: st.DataObject) -> None:
    question = data.draw(_questions())
    question = Question("numeric", question.lower, question.upper, log=question.log)  # closed
    points = data.draw(_quantiles(question, 0.05))  # every stretch thicker than the 1% floor
    cdf = cdf_from_quantiles(question, points)
    for p, x in points:
        found = question.scaled(quantile(question, cdf, p))
        assert found == pytest.approx(question.scaled(x), abs=1 / (GRID - 1) + 1e-9)
