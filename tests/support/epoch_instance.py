"""One app instance's signing path, as a separate process: ``python -m
tests.support.epoch_instance CONNECTION_STRING``, with the app's settings in the environment
(``STORAGE_ACCOUNT_NAME``, ``CERT_TABLE_NAME``, ``REGISTRY_CACHE_SECONDS``, ...).

The signer is the one certsas.runtime.build_signer makes from those settings (managed
identity mode: the EpochWatch on the registry table, the UserDelegationSigner), with two
parts swapped behind its SignerClients seam: the registry table is Azurite's (reached with
CONNECTION_STRING; Azurite takes no Entra ID tokens over http), and the counting key source
stands where Entra ID would issue delegation keys. It signs a token every 20 ms, as steady
traffic would, and prints one JSON line whenever the key it signs with changes: how many
keys it has fetched, and which key Storage's check (HMAC over the string-to-sign) says
signed the token.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

from certsas import runtime
from certsas.clock import system_clock
from certsas.config import Settings, StorageSettings
from certsas.scope import Grant
from certsas.storage import StorageClients
from tests.support.delegation import CountingKeySource, signed_by
from tests.support.signer_seams import StandInKeyClients

GRANT = Grant("reports", "in/a.csv", "r", 15)


def main(connection_string: str) -> None:
    settings = Settings.from_env(os.environ)
    azurite = StorageClients(StorageSettings.from_env(
        {"STORAGE_CONNECTION_STRING": connection_string}))
    source = CountingKeySource()
    signer = runtime.build_signer(settings, StandInKeyClients(azurite.hot_table, source))
    shown = -1
    while True:
        request_id = str(uuid.uuid4())
        signed = signer.sign(GRANT, system_clock(), request_id=request_id)
        used = [i for i, key in enumerate(source.keys) if signed_by(signed.url, key)]
        if used != [shown]:
            shown = used[0] if len(used) == 1 else -2
            print(json.dumps({"at": time.time(), "fetches": source.fetches, "key": used,
                              "scid_is_request_id": f"scid={request_id}" in signed.token}),
                  flush=True)
        time.sleep(0.02)


if __name__ == "__main__":
    main(sys.argv[1])
