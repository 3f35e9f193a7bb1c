import pytest

from plldb.attach.connection import LoopSettings, loop_settings
from plldb.attach.errors import AttachError


def test_the_defaults_fit_api_gateways_limits():
    settings = loop_settings({})
    assert settings == LoopSettings()
    assert settings.keepalive_seconds == 300 < 600  # within the idle timeout
    assert settings.max_connection_seconds == 7000 < 7200  # renewed before the maximum age


def test_the_environment_tunes_keepalive_and_renewal_only():
    base = LoopSettings(poll_seconds=0.05)
    settings = loop_settings(
        {"PLLDB_KEEPALIVE_SECONDS": " 1.5 ", "PLLDB_RENEW_AFTER_SECONDS": "5"}, base
    )
    assert (settings.keepalive_seconds, settings.max_connection_seconds) == (1.5, 5.0)
    assert settings.poll_seconds == 0.05


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan", "inf"])
@pytest.mark.parametrize("variable", ["PLLDB_KEEPALIVE_SECONDS", "PLLDB_RENEW_AFTER_SECONDS"])
def test_an_unusable_value_is_one_clear_error(variable, value):
    with pytest.raises(AttachError, match=f"{variable} must be a positive number of seconds"):
        loop_settings({variable: value})


def test_the_heartbeat_comes_three_times_per_lease_and_never_later_than_the_keepalive():
    from plldb.attach.connection import heartbeat_seconds
    from plldb.attach.sessions import Session

    settings = LoopSettings(keepalive_seconds=300)
    assert heartbeat_seconds(settings, Session("s", lease_seconds=60)) == 20
    assert heartbeat_seconds(settings, Session("s", lease_seconds=7200)) == 300
    assert heartbeat_seconds(settings, Session("s")) == 300  # an older helper stack: no lease
