"""Invocations recorded with `plldb attach --record tests/recordings`, replayed as tests.

The plldb_replay fixture comes from plldb's pytest plugin: it runs the handler the template
names for the recorded function, from the source in this checkout, with the recorded event.
"""

from __future__ import annotations

import pytest

from plldb.testing import load_recording, recordings


@pytest.mark.parametrize("recording", recordings("recordings"))
def test_the_handler_still_gives_the_recorded_answer(plldb_replay, recording):
    assert plldb_replay(recording) == load_recording(recording).response
