"""Versions published by a stack update come from the updated function, as in CloudFormation.

moto's update adds new resources before it modifies existing ones, so an AWS::Lambda::Version
added together with a change to its function (what SAM's AutoPublishAlias does on every code
change) is published from the function as it was, and moto, seeing nothing changed since the
last version, answers with that old version. CloudFormation follows dependencies: the
function is updated first. Here new versions are created after moto's modifications.
"""

from __future__ import annotations

from typing import Any

VERSION = "AWS::Lambda::Version"


def install(resource_map_class: Any) -> None:
    """Patch moto's ResourceMap.update once per process."""
    original = resource_map_class.update

    def update(self: Any, template: dict[str, Any], parameters: Any = None) -> None:
        find_changes = self.build_resource_diff
        deferred: list[str] = []

        def changes_without_new_versions(*args: Any, **kwargs: Any) -> dict[str, list[str]]:
            names = find_changes(*args, **kwargs)
            resources = template.get("Resources", {})
            deferred[:] = [n for n in names["Add"] if resources[n].get("Type") == VERSION]
            names["Add"] = [n for n in names["Add"] if n not in deferred]
            return names

        self.build_resource_diff = changes_without_new_versions
        try:
            original(self, template, parameters)
        finally:
            del self.build_resource_diff
        for logical_id in deferred:
            _ = self[logical_id]  # moto builds a resource when it is first read

    resource_map_class.update = update
