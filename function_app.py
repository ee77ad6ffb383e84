"""certsas: the Azure Functions entry point (Python v2 programming model).

Settings are read and checked here, at start-up, and every problem is logged once,
naming the setting. Whatever they hold, the functions below are declared, so the host
always indexes them: a misconfigured app answers health with ``503 misconfigured`` and
token with ``503 configuration_error`` instead of vanishing (SPEC §3). The storage
clients are built on first request.
"""

from __future__ import annotations

import logging
import os

import azure.functions as func

from certsas import http, runtime
from certsas.runtime import get_broker, get_rotator, run_expiry_check

# The SDKs log every storage request's headers at INFO: noise in Application Insights and
# about 0.4 ms of CPU per call on the token path. Their warnings and errors still come through.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
# Decision lines are INFO (issued) and WARNING (refused): emit them whatever the worker's
# root level is; host.json decides what Application Insights keeps.
logging.getLogger("certsas").setLevel(logging.INFO)

# Never raises on a setting: problems are logged here, once, and answered per request.
startup = runtime.start(os.environ)

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="token", methods=["POST"])
def token(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return http.token(req, get_broker, context.invocation_id)


@app.route(route="rotate", methods=["POST"])
def rotate(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return http.rotate(req, get_rotator, context.invocation_id)


@app.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    return http.health(runtime.start().misconfigured)


# The schedule is the checked value of EXPIRY_CHECK_SCHEDULE, or SPEC §3's default while
# it is unset or wrong (the start-up line says which), never "%EXPIRY_CHECK_SCHEDULE%": a
# %...% name is looked up by the host in the app settings, where our default does not
# exist, and a bad one would fail the whole app's indexing. App settings are environment
# variables when the worker imports this file, and changing one restarts the app
# (docs/audit-and-expiry.md).
@app.timer_trigger(schedule=startup.expiry_check_schedule, arg_name="timer",
                   run_on_startup=False)
def expiry_check(timer: func.TimerRequest) -> None:
    run_expiry_check(os.environ)
