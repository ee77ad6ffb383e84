"""The HTTP layer: a request becomes a broker call; a result or refusal becomes a response."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import azure.functions as func

from certsas.broker import RequestInfo, TokenBroker
from certsas.errors import ConfigurationError, Refusal
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


def token(
    req: func.HttpRequest, broker: Callable[[], TokenBroker], invocation_id: str | None = None
) -> func.HttpResponse:
    """``POST /api/token``."""
    info = request_info(req, invocation_id)
    try:
        issued = broker().issue(req.headers, req.get_body() or b"", info)
    except Refusal as refusal:
        return refusal_response(refusal)
    except ConfigurationError:
        # Settings are checked at start-up; this is the same error on a lazy path.
        logger.error("certsas configuration error (request %s)", info.request_id, exc_info=True)
        return json_response(500, {"error": "configuration_error",
                                   "message": "The service is misconfigured."})
    except Exception as exc:
        # Fail closed with no detail for the caller; the operator gets the type, not a dump.
        logger.error("certsas internal error (request %s): %s", info.request_id,
                     type(exc).__name__)
        return json_response(500, {"error": "internal_error",
                                   "message": "The request could not be completed."})
    return json_response(200, issued.to_json())


def rotate(
    req: func.HttpRequest, rotator: Callable[[], Rotator], invocation_id: str | None = None
) -> func.HttpResponse:
    """``POST /api/rotate`` (SPEC §4a), answered as ``token`` answers."""
    info = request_info(req, invocation_id)
    try:
        rotated = rotator().rotate(req.headers, req.get_body() or b"", info)
    except Refusal as refusal:
        return refusal_response(refusal)
    except ConfigurationError:
        logger.error("certsas configuration error (request %s)", info.request_id, exc_info=True)
        return json_response(500, {"error": "configuration_error",
                                   "message": "The service is misconfigured."})
    except Exception as exc:
        logger.error("certsas internal error (request %s): %s", info.request_id,
                     type(exc).__name__)
        return json_response(500, {"error": "internal_error",
                                   "message": "The request could not be completed."})
    return json_response(201, rotated.to_json())


def health() -> func.HttpResponse:
    """``GET /api/health``: liveness only; calls no dependency."""
    return json_response(200, {"status": "ok"})
