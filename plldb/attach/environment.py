"""os.environ with a per-invocation overlay: concurrent handlers each see their own variables."""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping

from plldb.attach.invocation import Invocation
from plldb.attach.local_source import LocalFunction

CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
)  # fmt: skip
PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")


# None marks a variable the invocation hides from the process environment.
_overlay: contextvars.ContextVar[dict[str, str | None] | None] = contextvars.ContextVar(
    "plldb_environ_overlay", default=None
)


class OverlayEnviron(MutableMapping[str, str]):
    """os.environ as seen by the current invocation: its overlay over the real environment."""

    def __init__(self, real: MutableMapping[str, str]) -> None:
        self.real = real

    def __getitem__(self, key: str) -> str:
        overlay = _overlay.get()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is None:
                raise KeyError(key)
            return value
        return self.real[key]

    def __setitem__(self, key: str, value: str) -> None:
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("os.environ keys and values must be str")
        overlay = _overlay.get()
        if overlay is None:
            self.real[key] = value
        else:
            overlay[key] = value

    def __delitem__(self, key: str) -> None:
        overlay = _overlay.get()
        if overlay is None:
            del self.real[key]
            return
        if key not in self:
            raise KeyError(key)
        overlay[key] = None

    def __contains__(self, key: object) -> bool:
        overlay = _overlay.get()
        if overlay is not None and key in overlay:
            return overlay[key] is not None  # type: ignore[index]
        return key in self.real

    def __iter__(self) -> Iterator[str]:
        overlay = _overlay.get()
        if overlay is None:
            yield from list(self.real)
            return
        overlay = dict(overlay)
        for key in list(self.real):
            if key not in overlay:
                yield key
        yield from (key for key, value in overlay.items() if value is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self)

    def __repr__(self) -> str:
        return f"environ({dict(self)!r})"

    def __or__(self, other: Mapping[str, str]) -> dict[str, str]:
        return {**self, **other}

    def __ror__(self, other: Mapping[str, str]) -> dict[str, str]:
        return {**other, **self}

    def __ior__(self, other: Mapping[str, str]) -> OverlayEnviron:
        self.update(other)
        return self


_install_lock = threading.Lock()
_installed: list[MutableMapping[str, str]] = []  # the original os.environ, once per install


def install_environ_overlay() -> None:
    """Replace os.environ by an OverlayEnviron; nested installs are counted."""
    with _install_lock:
        if not _installed:
            _installed.append(os.environ)
            # Rebinding, not mutating, is the point: os.getenv reads the module's `environ`.
            os.environ = OverlayEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003
        else:
            _installed.append(_installed[0])


def uninstall_environ_overlay() -> None:
    """Undo one install_environ_overlay; the last one puts the original os.environ back."""
    with _install_lock:
        if not _installed:
            return
        original = _installed.pop()
        if not _installed and isinstance(os.environ, OverlayEnviron):
            os.environ = original  # type: ignore[assignment]  # noqa: B003


@contextlib.contextmanager
def environ_overlay() -> Iterator[None]:
    install_environ_overlay()
    try:
        yield
    finally:
        uninstall_environ_overlay()


def invocation_environment(
    invocation: Invocation, function: LocalFunction
) -> dict[str, str | None]:
    """The overlay one invocation sees: the function's variables and, if given, its role's keys.

    Without the role's keys the developer's own credentials apply, so any the function's
    environment carries are dropped; with them, the developer's profile and keys are hidden.
    """
    secret = (*CREDENTIAL_VARIABLES, *PROFILE_VARIABLES)
    overlay: dict[str, str | None] = {
        key: str(value) for key, value in invocation.environment.items() if key not in secret
    }
    if invocation.credentials is not None:
        overlay.update(dict.fromkeys(secret))
        overlay.update(
            {k: v for k, v in invocation.credentials.items() if k in CREDENTIAL_VARIABLES}
        )
    # Lambda's /var/task and handler point at the local copy here.
    overlay["LAMBDA_TASK_ROOT"] = str(function.code_dir)
    overlay["_HANDLER"] = function.handler
    return overlay


def enter_invocation(invocation: Invocation, function: LocalFunction) -> None:
    """From here on, the current context (one invocation's) sees that invocation's variables."""
    _overlay.set(invocation_environment(invocation, function))
