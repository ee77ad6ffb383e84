"""Run as a script under Microsoft's Python worker library (``azure-functions-runtime``, in
its own Python 3.13 environment): index a function app as the worker does when the host
starts it, and print one JSON document of the function metadata it would send the host.

    python worker_index.py APP_DIR

The process's environment is the app's settings. The worker's own code runs: its
``worker_init_request`` handler imports ``function_app.py`` (``loader.index_function_app``),
validates every function (``Registry.add_indexed_function``) and builds the metadata
(``loader.process_indexed_function``), and ``functions_metadata_request`` returns it. What
is not here is the host and the gRPC channel: the worker's proxy normally hands the library
the protobuf message classes of FunctionRpc.proto (``request.properties["protos"]``), and
those are stood in for by plain records with the proto's enum numbers (``_Protos``).
Standard library only: this file runs in the worker's environment, not the test suite's.
"""

from __future__ import annotations

import asyncio
import json
import sys
from types import SimpleNamespace
from typing import Any


class _Message:
    """A protobuf message as the worker builds one: keyword fields, read back as attributes."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


class _BindingInfo(_Message):
    # FunctionRpc.proto: BindingInfo.Direction and BindingInfo.DataType.
    out, inout = 1, 2
    undefined, string, binary, stream = 0, 1, 2, 3


class _StatusResult(_Message):
    Failure, Success, Cancelled = 0, 1, 2


class _Protos:
    BindingInfo = _BindingInfo
    StatusResult = _StatusResult

    def __getattr__(self, name: str) -> type[_Message]:
        # WorkerInitResponse, WorkerMetadata, RpcFunctionMetadata, RpcException, ...
        return type(name, (_Message,), {})


def _plain(value: Any) -> Any:
    if isinstance(value, _Message):
        return {key: _plain(item) for key, item in value.__dict__.items()}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


async def _index(app_dir: str) -> dict[str, Any]:
    # Installed in the worker's environment only (tests/support/worker.py).
    from azure_functions_runtime import handle_event  # type: ignore[import-not-found]

    init = SimpleNamespace(capabilities={}, function_app_directory=app_dir)
    request = SimpleNamespace(request=SimpleNamespace(worker_init_request=init),
                              properties={"host": "127.0.0.1", "protos": _Protos()})
    response = await handle_event.worker_init_request(request)
    metadata = await handle_event.functions_metadata_request(SimpleNamespace())
    results = metadata.function_metadata_results or []
    return {
        "init_status": response.result.status,
        "init_exception": _plain(getattr(response.result, "exception", None)),
        "functions": {
            m.name: {
                "raw_bindings": [json.loads(raw) for raw in m.raw_bindings],
                "bindings": _plain(m.bindings),
                "script_file": m.script_file,
                "properties": m.properties,
            }
            for m in results
        },
    }


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
    print(json.dumps(asyncio.run(_index(sys.argv[1]))))
