"""Finds the CloudFormation sources, inside an installed wheel or in a checkout."""

from __future__ import annotations

from pathlib import Path

from plldb.errors import TemplateError

_PACKAGE_DIR = Path(__file__).resolve().parent


def cloudformation_dir() -> Path:
    """plldb/cloudformation in a wheel; the repository's cloudformation/ in a checkout."""
    for candidate in (_PACKAGE_DIR / "cloudformation", _PACKAGE_DIR.parent / "cloudformation"):
        if (candidate / "template.yaml").is_file():
            return candidate
    raise TemplateError(
        "plldb's CloudFormation sources are missing from this installation; reinstall plldb"
    )
