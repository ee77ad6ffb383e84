"""A tool a test needs that a developer's machine may lack (zsh, a Python 3.13 for
Microsoft's worker): skipped there, with the reason in pytest's summary, but a failure
in CI (``CI=true``), whose machines have it (``.ci/run`` installs zsh where missing), so
a skip never passes for a green run."""

from __future__ import annotations

import os

import pytest


def require(found: object, what: str) -> None:
    """Go on when ``found`` is truthy; otherwise skip here, fail in CI."""
    if found:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is missing on this CI machine; .ci/run should provide it")
    pytest.skip(f"{what} is not installed here (CI runs this test)")
