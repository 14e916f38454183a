"""Event rates, history and change highlight (grantscope.model.rates)."""

from grantscope.model.rates import RateTracker, rate_changed


def test_rate_from_two_readings() -> None:
    r = RateTracker()
    r.update("xenbus", 100, 0.0)
    st = r.update("xenbus", 150, 2.0)
    assert st.rate == 25.0
    assert list(st.history) == [25.0]
    assert st.changed_at == 2.0  # 0 -> 25/s is a change


def test_steady_rate_does_not_rehighlight() -> None:
    r = RateTracker()
    r.update(1, 0, 0.0)
    r.update(1, 10, 1.0)
    st = r.update(1, 20, 2.0)
    assert st.rate == 10.0
    assert st.changed_at == 1.0


def test_counter_reset_restarts_key() -> None:
    r = RateTracker()
    r.update(5, 1000, 0.0)
    r.update(5, 1100, 1.0)
    st = r.update(5, 3, 2.0)
    assert st.rate == 0.0 and st.count == 3 and not st.history


def test_same_time_reading_is_ignored() -> None:
    r = RateTracker()
    r.update(5, 10, 1.0)
    st = r.update(5, 20, 1.0)
    assert st.count == 10


def test_forget_missing_and_rate_changed() -> None:
    r = RateTracker()
    r.update("a", 1, 0.0)
    r.update("b", 1, 0.0)
    r.forget_missing({"a"})
    assert set(r.states) == {"a"}
    assert rate_changed(10.0, 20.0)
    assert not rate_changed(10.0, 11.0)
    assert rate_changed(0.0, 0.1)
