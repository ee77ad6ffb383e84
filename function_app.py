"""certsas: the Azure Functions entry point (Python v2 programming model).

Settings are read and checked here, at start-up, so a misconfigured app fails
loudly with the setting's name; the storage clients are built on first request.
"""

from __future__ import annotations

import os

import azure.functions as func

from certsas import http
from certsas.config import Settings
from certsas.runtime import get_broker

Settings.from_env(os.environ)

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="token", methods=["POST"])
def token(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return http.token(req, get_broker, context.invocation_id)


@app.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    return http.health()
