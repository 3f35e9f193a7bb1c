"""Hooks into moto's CloudFormation so the offline cloud acts before a stack reports it is done.

moto builds a stack inside the CreateStack/UpdateStack/DeleteStack request and marks it
*_COMPLETE at once. The offline cloud's repairs (and its clean-up of what moto's delete leaves
behind) must happen before that mark, as CloudFormation does its work before it reports
completion: a reader that sees CREATE_COMPLETE must see the repaired stack. These hooks run a
listener inside moto's request, while the stack still reads *_IN_PROGRESS, and then let moto
mark it complete.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

_COMPLETE = {"CREATE_COMPLETE": "CREATE", "UPDATE_COMPLETE": "UPDATE"}
_BEGUN = {"CREATE_IN_PROGRESS": "CREATE", "UPDATE_IN_PROGRESS": "UPDATE"}


class Listener(Protocol):
    def changing(self, stack: Any, operation: str) -> None:
        """Runs as moto begins to change an existing stack (update, change set, delete)."""

    def settling(self, stack: Any, operation: str) -> None:
        """Runs while moto's stack still reads CREATE_/UPDATE_/DELETE_IN_PROGRESS."""

    def settled(self, stack: Any, operation: str) -> None:
        """Runs right after moto marked it complete (its last event is the *_COMPLETE one)."""


_listeners: list[Listener] = []
_installed = False
_install_lock = threading.Lock()


def listen(listener: Listener) -> Callable[[], None]:
    """Register `listener` for every stack operation in this process; returns the unregister."""
    install()
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


def install() -> None:
    """Patch moto's CloudFormation once per process (its backends are process-wide too)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from plldb.local import sam, update_order
        from plldb.local.moto_imports import import_cloudformation_models

        models = import_cloudformation_models()  # first: the import is faster through it
        from moto.cloudformation.parsing import ResourceMap

        Stack = models.Stack
        sam.install(Stack, models.ChangeSet)  # SAM templates expanded as moto parses them
        update_order.install(ResourceMap)  # new versions published from the updated function
        _patch_create(Stack)
        _patch_update(Stack)
        _patch_delete(Stack)
        _installed = True


def _notify(stage: str, stack: Any, operation: str) -> None:
    for listener in list(_listeners):
        try:
            getattr(listener, stage)(stack, operation)
        except Exception:  # a failed repair must not fail the user's CloudFormation call
            log.exception("offline cloud: %s stack %s (%s) failed", stage, stack.name, operation)


def _patch_create(stack_class: type) -> None:
    original = stack_class.mark_creation_complete

    def mark_creation_complete(self: Any) -> None:
        _notify("settling", self, "CREATE")
        self._plldb_settled = True  # the CREATE_COMPLETE event below is already settled
        try:
            original(self)
        finally:
            self._plldb_settled = False
            _notify("settled", self, "CREATE")

    stack_class.mark_creation_complete = mark_creation_complete

    # execute_change_set adds its *_COMPLETE event itself, without mark_creation_complete.
    add_event = stack_class._add_stack_event

    def _add_stack_event(self: Any, resource_status: str, *args: Any, **kwargs: Any) -> None:
        if resource_status in _BEGUN:  # a change set starts; its stack still reads *_COMPLETE
            _notify("changing", self, _BEGUN[resource_status])
        operation = _COMPLETE.get(resource_status)
        pending = operation is not None and not getattr(self, "_plldb_settled", False)
        if pending:
            _notify("settling", self, operation)
        try:
            add_event(self, resource_status, *args, **kwargs)
        finally:
            if pending:
                _notify("settled", self, operation)

    stack_class._add_stack_event = _add_stack_event


def _patch_update(stack_class: type) -> None:
    original = stack_class.update

    def update(self: Any, *args: Any, **kwargs: Any) -> None:
        _notify("changing", self, "UPDATE")
        # moto leaves the old *_COMPLETE status up while it updates, and takes the new
        # parameters only after its UPDATE_COMPLETE event: the repairs need them before.
        self.status = "UPDATE_IN_PROGRESS"
        if kwargs.get("parameters"):
            self.parameters = kwargs["parameters"]
        original(self, *args, **kwargs)

    stack_class.update = update


def _patch_delete(stack_class: type) -> None:
    original = stack_class.delete

    def delete(self: Any) -> None:
        _notify("changing", self, "DELETE")
        self.status = "DELETE_IN_PROGRESS"
        add_event = self._add_stack_event

        def before_complete(resource_status: str, *args: Any, **kwargs: Any) -> None:
            if resource_status == "DELETE_COMPLETE":
                _notify("settling", self, "DELETE")
            add_event(resource_status, *args, **kwargs)

        self._add_stack_event = before_complete
        try:
            original(self)
        finally:
            del self._add_stack_event
        _notify("settled", self, "DELETE")

    stack_class.delete = delete
