"""The functions and HTTP routes a Functions app declares, read once (the SDK refuses a
second read: it counts every name it has seen as a duplicate)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func


@dataclass(frozen=True)
class Route:
    name: str
    route: str
    methods: frozenset[str]
    handler: Callable[..., Any]
    wants_context: bool


@functools.cache
def app_functions(app: func.FunctionApp) -> tuple[func.Function, ...]:
    return tuple(app.get_functions())


def user_function(app: func.FunctionApp, name: str) -> Callable[..., Any]:
    """The Python function the host calls for the function ``name`` (any trigger)."""
    for function in app_functions(app):
        if function.get_function_name() == name:
            handler: Callable[..., Any] = function.get_user_function()
            return handler
    raise KeyError(name)


@functools.cache
def http_routes(app: func.FunctionApp) -> tuple[Route, ...]:
    routes = []
    for function in app_functions(app):
        if not function.is_http_function():
            continue
        trigger = function.get_trigger()
        name = str(function.get_function_name())
        handler = function.get_user_function()
        declared = getattr(trigger, "methods", None) or []
        methods = frozenset(str(getattr(m, "value", m)).upper() for m in declared)
        routes.append(Route(
            name=name,
            route=str(getattr(trigger, "route", None) or name),
            methods=methods or frozenset({"GET", "POST"}),
            handler=handler,
            wants_context="context" in handler.__code__.co_varnames[: handler.__code__.co_argcount],
        ))
    return tuple(routes)


def find_route(app: func.FunctionApp, name: str) -> Route:
    for route in http_routes(app):
        if route.name == name:
            return route
    raise KeyError(name)
