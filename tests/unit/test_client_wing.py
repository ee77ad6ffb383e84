"""certsas.client stands alone: it imports nothing of certsas outside itself, and from
outside the standard library only what requirements-client.in installs, so a partner's
machine needs none of the service's dependencies (azure-functions, azure-data-tables,
azure-identity). The fresh-venv test (tests/integration/test_client_venv.py) shows the same
by installing; this one says which import broke it."""

from __future__ import annotations

import ast
import sys

import pytest

from tests.support import ROOT

CLIENT = ROOT / "certsas" / "client"
# Top-level packages the client may import, beside the standard library and itself.
ALLOWED = {"azure", "cryptography", "requests", "certsas"}
ALLOWED_AZURE = ("azure.core", "azure.storage.blob")


def imports(path: str) -> set[str]:
    tree = ast.parse((CLIENT / path).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(p.name for p in CLIENT.glob("*.py")))
def test_the_client_imports_itself_its_three_libraries_and_the_standard_library(
        path: str) -> None:
    for name in imports(path):
        top = name.split(".")[0]
        assert top in ALLOWED or top in sys.stdlib_module_names or top == "__future__", name
        if top == "certsas":
            assert name == "certsas.client" or name.startswith("certsas.client."), name
        if top == "azure":
            assert name.startswith(ALLOWED_AZURE), name


def test_requirements_client_in_names_those_libraries() -> None:
    listed = {line.split(">")[0].split("=")[0].strip() for line in
              (ROOT / "requirements-client.in").read_text().splitlines()
              if line.strip() and not line.startswith(("#", "-"))}
    assert listed == {"azure-storage-blob", "cryptography", "requests"}
