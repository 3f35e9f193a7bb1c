import pytest

from plldb.errors import PlldbError
from plldb.local import foreground


def test_a_missing_local_extra_is_named_with_the_install_line(monkeypatch):
    monkeypatch.setattr(foreground, "_importable", lambda name: name != "websockets")
    install = r"needs websockets, from .*pip install -e \"\.\[local\]\""
    with pytest.raises(PlldbError, match=install):
        foreground.run_until_stopped(print, print)


def test_a_module_hidden_from_import_counts_as_missing(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "moto", None)  # `import moto` now fails
    with pytest.raises(PlldbError, match=r"needs moto, from the `local` extra"):
        foreground.require_local_extra()


def test_a_second_claim_names_the_running_cloud_and_a_released_one_is_free(tmp_path):
    from plldb.local.instance import AlreadyRunning, Instance

    first = Instance(tmp_path)
    first.claim()
    first.record({"moto": "http://localhost:4566"}, {"AWS_ENDPOINT_URL": "http://localhost:4566"})
    running = r"already running at http://localhost:4566 \(pid \d+\)"
    with pytest.raises(AlreadyRunning, match=running):
        Instance(tmp_path).claim()
    first.release()
    second = Instance(tmp_path)
    second.claim()  # the first let go: nothing in the way
    second.release()


def test_a_schedule_scale_that_is_not_positive_is_one_clear_error():
    with pytest.raises(PlldbError, match=r"--schedule-scale must be a positive number, not 0"):
        foreground.run_until_stopped(print, print, schedule_scale=0)


def test_local_up_hands_its_schedule_scale_to_the_cloud(monkeypatch):
    from invoke import Context

    from plldb.tasks import local_up

    seen = {}
    monkeypatch.setattr(foreground, "run_until_stopped", lambda *a, **kw: seen.update(kw))
    local_up.body(Context(), schedule_scale=60.0)
    assert seen["schedule_scale"] == 60.0
