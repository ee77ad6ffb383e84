"""Run as a script in a fresh interpreter: import a function app as the worker does, then
print one JSON document of what its indexing saw (issue 18, item 14).

    python index_probe.py APP_DIR

The process's environment is the app's settings. The document holds each function's
bindings as the v2 model declares them (``app.get_functions()``, what the worker turns
into function metadata), the answers of ``/api/health``, ``/api/token`` and ``/api/rotate`` called as the
host calls them, and every ``certsas startup`` line logged. Standard library and
azure-functions only: the same script runs beside Microsoft's worker in another Python.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from typing import Any


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("certsas startup "):
            self.lines.append({"level": record.levelname,
                               "fields": json.loads(message[len("certsas startup "):])})


class _Context:
    invocation_id = "probe-invocation"


def _answer(response: Any) -> dict[str, Any]:
    return {"status": response.status_code, "body": json.loads(response.get_body())}


def probe(app_dir: str) -> dict[str, Any]:
    import azure.functions as func

    keep = _Keep()
    logging.getLogger().addHandler(keep)
    sys.path.insert(0, app_dir)
    module = importlib.import_module("function_app")
    app = module.app
    functions = {f.get_function_name(): f for f in app.get_functions()}
    document: dict[str, Any] = {
        # The raw bindings: the JSON the worker hands the host as each function's metadata.
        "functions": {name: [json.loads(raw) for raw in f.get_raw_bindings()]
                      for name, f in functions.items()},
        "startup": keep.lines,
    }
    health = func.HttpRequest(method="GET", url="http://localhost/api/health", body=b"")
    document["health"] = _answer(functions["health"].get_user_function()(health))
    token = func.HttpRequest(method="POST", url="http://localhost/api/token", body=b"",
                             headers={"X-ARR-ClientCert": "not-a-certificate"})
    document["token"] = _answer(functions["token"].get_user_function()(token, _Context()))
    rotate = func.HttpRequest(method="POST", url="http://localhost/api/rotate", body=b"{}",
                              headers={"X-ARR-ClientCert": "not-a-certificate"})
    document["rotate"] = _answer(functions["rotate"].get_user_function()(rotate, _Context()))
    return document


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1])))
