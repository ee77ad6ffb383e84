"""The HTTP layer: a request becomes a broker call; a result or refusal becomes a response.

Every endpoint runs its call through :func:`answer`, which turns whatever it raises into
SPEC §1's answer: a refusal into its code, unusable settings (ConfigurationError, as
``runtime.get_broker`` raises while misconfigured) into ``503 configuration_error``
naming the settings, anything else into a bare 500.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import azure.functions as func

from certsas.audit import Decision, log_decision
from certsas.broker import RequestInfo, TokenBroker
from certsas.errors import ConfigurationError, ConfigurationErrors, Refusal, ServiceMisconfigured
from certsas.rotation import ACTION as ROTATE
from certsas.rotation import Rotator

logger = logging.getLogger("certsas.http")
_HEADERS = {
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def json_response(status: int, payload: dict[str, Any]) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(payload), status_code=status, mimetype="application/json",
        headers=dict(_HEADERS),
    )


def refusal_response(refusal: Refusal) -> func.HttpResponse:
    return json_response(refusal.status, {"error": refusal.code, "message": refusal.message})


def request_info(req: func.HttpRequest, invocation_id: str | None) -> RequestInfo:
    # The nearest proxy (App Service's front end) appends the address it saw last; the
    # entries before it are whatever the caller wrote, so the audit takes the last one.
    forwarded = req.headers.get("x-forwarded-for") or req.headers.get("x-client-ip") or ""
    address = forwarded.split(",")[-1].strip()[:64] or None
    return RequestInfo(request_id=invocation_id or str(uuid.uuid4()), client_address=address)


def misconfigured(error: ConfigurationError) -> ServiceMisconfigured:
    """The refusal for unusable settings: the caller learns which settings, never a value
    (the start-up line has what is wrong with each)."""
    names = error.settings if isinstance(error, ConfigurationErrors) else (error.setting,)
    return ServiceMisconfigured(
        detail=f"settings unusable: {', '.join(names)}",
        message=f"The app's settings are unusable: {', '.join(names)}. "
                "Its start-up log line says what is wrong with each.")


def answer(info: RequestInfo, call: Callable[[], func.HttpResponse],
           action: str | None = None) -> func.HttpResponse:
    """Run one endpoint's ``call``; whatever it raises becomes SPEC §1's answer.
    ``action`` names the endpoint on decision lines (``"rotate"``; None for a token)."""
    try:
        return call()
    except Refusal as refusal:
        return refusal_response(refusal)
    except ConfigurationError as error:
        unusable = misconfigured(error)
        # No broker ran, so no decision line yet: SPEC §1 wants one for every request.
        log_decision(Decision(request_id=info.request_id, outcome="refused", error=unusable.code,
                              reason=unusable.detail, client_address=info.client_address,
                              action=action))
        return refusal_response(unusable)
    except Exception as exc:
        # Fail closed with no detail for the caller; the operator gets the type, not a dump.
        logger.error("certsas internal error (request %s): %s", info.request_id,
                     type(exc).__name__)
        return json_response(500, {"error": "internal_error",
                                   "message": "The request could not be completed."})


T = TypeVar("T")


def built(factory: Callable[[], T], info: RequestInfo, action: str | None = None) -> T:
    """The endpoint's broker or rotator from ``factory``. A bug building it (not unusable
    settings: :func:`answer` logs those) is the call's one decision line, as a bug inside
    the broker is, since no broker runs to log it."""
    try:
        return factory()
    except ConfigurationError:
        raise
    except Exception as exc:
        log_decision(Decision(request_id=info.request_id, outcome="error", error="internal_error",
                              reason=type(exc).__name__, client_address=info.client_address,
                              action=action))
        raise


def token(
    req: func.HttpRequest, broker: Callable[[], TokenBroker], invocation_id: str | None = None
) -> func.HttpResponse:
    """``POST /api/token``."""
    info = request_info(req, invocation_id)
    return answer(info, lambda: json_response(
        200, built(broker, info).issue(req.headers, req.get_body() or b"", info).to_json()))


def rotate(
    req: func.HttpRequest, rotator: Callable[[], Rotator], invocation_id: str | None = None
) -> func.HttpResponse:
    """``POST /api/rotate`` (SPEC §4a), answered as ``token`` answers."""
    info = request_info(req, invocation_id)
    return answer(info, lambda: json_response(
        201, built(rotator, info, ROTATE).rotate(req.headers, req.get_body() or b"",
                                                 info).to_json()), ROTATE)


def health(misconfigured_settings: tuple[str, ...] = ()) -> func.HttpResponse:
    """``GET /api/health``: liveness only; calls no dependency. While the settings are
    unusable: 503 ``misconfigured`` with their names, so the platform's Health check and
    its alert see the app and say what to fix (SPEC §1)."""
    if misconfigured_settings:
        return json_response(503, {"status": "misconfigured",
                                   "settings": list(misconfigured_settings)})
    return json_response(200, {"status": "ok"})
