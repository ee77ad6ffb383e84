"""Running the ``certsas`` command line in-process, as a test reads it."""

from __future__ import annotations

import pytest

from certsas.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    """Exit code, stdout lines, and stderr of ``certsas ARGV``."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err
