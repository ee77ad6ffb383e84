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


def locked(path: str) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (version, hashes) of a pip-compile lock file."""
    entries: dict[str, tuple[str, frozenset[str]]] = {}
    name = ""
    for line in (ROOT / path).read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, version = line.split(" ")[0].split("==")
            entries[name] = (version, frozenset())
        elif line.strip().startswith("--hash=sha256:"):
            version, hashes = entries[name]
            entries[name] = (version, hashes | {line.strip().split(":")[1].rstrip(" \\")})
    return entries


def test_the_client_lock_pins_what_the_service_lock_pins() -> None:
    """Same versions and hashes as requirements.txt, so a partner runs what the tests ran;
    the fresh-venv test shows the set is complete (pip --require-hashes refuses a gap)."""
    client, service = locked("requirements-client.txt"), locked("requirements.txt")
    assert {"azure-core", "azure-storage-blob", "cryptography", "requests"} <= set(client)
    assert not {"azure-functions", "azure-data-tables", "azure-identity", "msal"} & set(client)
    assert {name: service.get(name) for name in client} == client
    assert all(hashes for _, hashes in client.values())
