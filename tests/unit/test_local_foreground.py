import pytest

from plldb.errors import PlldbError
from plldb.local import foreground


def test_a_missing_local_extra_is_named_with_the_install_line(monkeypatch):
    monkeypatch.setattr(foreground, "_importable", lambda name: name != "websockets")
    with pytest.raises(PlldbError, match=r"needs websockets: pip install 'plldb\[local\]'"):
        foreground.run_until_stopped(print, print)
