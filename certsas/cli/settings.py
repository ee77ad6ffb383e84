"""Where the command line's settings come from: the environment, then ``local.settings.json``.

SPEC §6: the environment wins, and the file's ``Values`` (as ``func start`` reads them)
fill in only what the environment does not set. The storage account is one choice, not
two settings: when the environment names an account either way (a connection string or
an account name), the file's account settings are not used at all. Otherwise an
operator in a folder set up for local work (whose file holds Azurite's connection
string) who runs ``STORAGE_ACCOUNT_NAME=prod certsas register ...`` would get "set exactly
one of ..." instead of the account they named.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from certsas.config import load_local_settings

LOCAL_SETTINGS = Path("local.settings.json")

# Either of these in the environment chooses the account ...
STORAGE_CHOICE = ("STORAGE_CONNECTION_STRING", "STORAGE_ACCOUNT_NAME")
# ... and then none of these is taken from the file: the account, and the identity that
# goes with it. Table names and timeouts still fill in: they name no account.
STORAGE_ACCOUNT_SETTINGS = (*STORAGE_CHOICE, "AZURE_CLIENT_ID")

PRECEDENCE_HELP = (
    "Settings come from the environment; the Values of ./local.settings.json (as func start "
    "reads them) fill in only what the environment does not set. Setting "
    "STORAGE_CONNECTION_STRING or STORAGE_ACCOUNT_NAME in the environment chooses the storage "
    "account: the file's STORAGE_CONNECTION_STRING, STORAGE_ACCOUNT_NAME and AZURE_CLIENT_ID "
    "are then ignored."
)


def layered(environ: Mapping[str, str], file_values: Mapping[str, str]) -> dict[str, str]:
    """The settings in force: ``file_values`` under ``environ``, the account as one choice."""
    chosen = any(environ.get(name, "").strip() for name in STORAGE_CHOICE)
    merged = {name: value for name, value in file_values.items()
              if not (chosen and name in STORAGE_ACCOUNT_SETTINGS)}
    merged.update(environ)
    return merged


def file_values_to_use(environ: Mapping[str, str], file_values: Mapping[str, str]
                       ) -> dict[str, str]:
    """The file's values that fill in: what ``certsas serve`` copies into its environment."""
    merged = layered(environ, file_values)
    return {name: value for name, value in file_values.items()
            if name not in environ and name in merged}


def settings_env(path: Path = LOCAL_SETTINGS) -> dict[str, str]:
    """The environment over the Values of ``path`` (./local.settings.json) when it exists."""
    return layered(os.environ, load_local_settings(path))


def where_looked(path: Path = LOCAL_SETTINGS) -> str:
    """Where the settings were read from, for an error about a missing one: outside the
    repository the file is easily not there, and the operator should hear that."""
    if path.is_file():
        return f"settings read from the environment and {path.resolve()}"
    return (f"settings read from the environment; ./{path} was looked for in "
            f"{Path.cwd()} and is not there")
