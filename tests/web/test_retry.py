"""The one retry policy: a pure generator of delays, tested without a clock."""

from __future__ import annotations

from itertools import islice

import pytest
from hypothesis import given, strategies as st

from tagd.web.retry import backoff


def test_default_is_half_a_second_doubling_to_ten() -> None:
    assert list(islice(backoff(), 8)) == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_a_fresh_generator_starts_again_at_the_first_delay() -> None:
    delays = backoff()
    list(islice(delays, 5))
    assert next(backoff()) == 0.5


@given(st.floats(0.001, 100), st.floats(0, 1000), st.floats(1, 10))
def test_delays_never_shrink_and_never_pass_the_maximum(first: float, extra: float, factor: float) -> None:
    delays = list(islice(backoff(first, first + extra, factor), 30))
    assert delays[0] == first
    assert all(a <= b <= first + extra for a, b in zip(delays, delays[1:]))


@pytest.mark.parametrize("args", [(0, 10, 2), (5, 1, 2), (1, 10, 0.5)])
def test_a_policy_that_would_spin_or_shrink_is_refused(args) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        backoff(*args)
