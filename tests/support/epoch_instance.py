"""One app instance's signing path, as a separate process: ``python -m
tests.support.epoch_instance CONNECTION_STRING TABLE SECONDS``.

The real pieces of the app (the lean Table client, the EpochWatch on the registry table,
the UserDelegationSigner) with the counting key source in place of Entra ID. It signs a
token every 20 ms, as steady traffic would, and prints one JSON line whenever the key
it signs with changes: how many keys it has fetched, and which key Storage's check
(HMAC over the string-to-sign) says signed the token.
"""

from __future__ import annotations

import json
import sys
import time
import uuid

from certsas.clock import system_clock
from certsas.config import StorageSettings
from certsas.epoch import EpochWatch
from certsas.sas import UserDelegationSigner
from certsas.scope import Grant
from certsas.storage import StorageClients
from tests.support.delegation import CountingKeySource, signed_by

GRANT = Grant("reports", "in/a.csv", "r", 15)


def main(connection_string: str, table: str, seconds: int) -> None:
    storage = StorageClients(StorageSettings.from_env(
        {"STORAGE_CONNECTION_STRING": connection_string, "CERT_TABLE_NAME": table}))
    watch = EpochWatch(storage.hot_table(table), seconds)
    source = CountingKeySource()
    signer = UserDelegationSigner("certsasprod01", "https://certsasprod01.blob.core.windows.net",
                                  source, max_ttl_minutes=60, epoch=watch.generation)
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
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
