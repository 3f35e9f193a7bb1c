import pytest

from plldb.errors import PlldbError
from plldb.local.gateway.limits import ConnectionLimits, LimitsError


def test_the_defaults_are_api_gateways_quotas():
    limits = ConnectionLimits()
    assert (limits.max_connection_seconds, limits.idle_timeout_seconds) == (7200, 600)
    assert limits.disconnect_delivery == 1.0


def test_the_earlier_limit_is_the_deadline():
    limits = ConnectionLimits(max_connection_seconds=10, idle_timeout_seconds=3)
    assert limits.deadline(opened_at=100, last_message_at=100) == (103, "idle timeout")
    assert limits.deadline(opened_at=100, last_message_at=108.5) == (
        110,
        "maximum connection duration",
    )


def test_delivery_is_a_probability():
    assert ConnectionLimits().delivers_disconnect(lambda: 0.999)
    assert not ConnectionLimits(disconnect_delivery=0.0).delivers_disconnect(lambda: 0.0)
    half = ConnectionLimits(disconnect_delivery=0.5)
    assert half.delivers_disconnect(lambda: 0.49)
    assert not half.delivers_disconnect(lambda: 0.5)


@pytest.mark.parametrize(
    "changes",
    [
        {"max_connection_seconds": 0},
        {"idle_timeout_seconds": -1},
        {"idle_timeout_seconds": float("nan")},
        {"max_connection_seconds": float("inf")},
        {"idle_timeout_seconds": "600"},
        {"disconnect_delivery": 1.5},
        {"disconnect_delivery": -0.1},
    ],
)
def test_unusable_limits_are_one_clear_error(changes):
    with pytest.raises(LimitsError, match=next(iter(changes))) as raised:
        ConnectionLimits(**changes)
    assert isinstance(raised.value, PlldbError)


def test_the_offline_cloud_checks_its_limits_before_starting_anything():
    from plldb.local.cloud import OfflineCloud

    with pytest.raises(LimitsError, match="idle_timeout_seconds"):
        OfflineCloud(idle_timeout_seconds=0)
    lossy = OfflineCloud(max_connection_seconds=8, idle_timeout_seconds=2.5, lossy_disconnect=True)
    assert lossy.connection_limits == ConnectionLimits(8, 2.5, 0.0)
    assert OfflineCloud(disconnect_delivery=0.25).connection_limits.disconnect_delivery == 0.25
