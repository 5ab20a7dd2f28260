"""What every router shares: the request-body base (unknown fields refused), the success envelope, the documented
problem responses, and ``run``, the one way a route hands a command to the engine and answers with its result."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from controller.api.access import runtime_of
from controller.api.problems import Problem, result_response
from controller.engine.cabinet import CabinetEngine
from controller.engine.results import CommandResult


class Body(BaseModel):
    """Request bodies: unknown fields are refused, and values are not coerced across JSON types ("5" is no int)."""

    model_config = ConfigDict(extra="forbid", strict=True)


T = TypeVar("T")
# An enum (or Decimal) field of a strict body: JSON can only carry its value as a string or number.
Lax = Annotated[T, Field(strict=False)]


def example(values: dict[str, Any]) -> ConfigDict:
    """A body's example for the OpenAPI document (bodies keep the ``Body`` rules: the configs merge)."""
    return ConfigDict(json_schema_extra={"examples": [values]})


class Data(BaseModel):
    """A success: what the engine or the store answered, under ``data``."""

    data: dict[str, Any] = Field(description="the result; its fields are described on each route")


class DataList(BaseModel):
    data: list[dict[str, Any]]


_STATUS_TEXT = {
    400: "malformed JSON or a bad OAuth2 request",
    401: "no token, a bad or expired token, a token of an ended session, or wrong credentials",
    403: "the caller lacks the privilege or scope, or a rule refused",
    404: "no such resource",
    409: "a rule or the workflow's state refused",
    413: "the body is too large",
    415: "the body is not JSON",
    422: "the request does not match the schema, or a value is refused",
    423: "the user is locked out",
    500: "an internal error (with a correlation id)",
    503: "the cabinet is not ready (hardware connecting or restoring)",
}

# Documented on every route; ``openapi.py`` moves their schema under application/problem+json.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": text} for status, text in _STATUS_TEXT.items()
}


def engine_of(request: Request) -> CabinetEngine:
    return runtime_of(request).require_engine()


async def execute(request: Request, command: Any) -> CommandResult[Any]:
    """Run ``command`` on the engine and count its outcome."""
    runtime = runtime_of(request)
    result = await runtime.require_engine().execute(command)
    runtime.metrics.observe_command(command, result)
    return result


async def run(request: Request, command: Any) -> JSONResponse:
    """Run ``command`` and answer: 200 ``{"data": ...}`` or the refusal as problem+json."""
    return result_response(await execute(request, command))


def ask(request: Request, query: Any) -> JSONResponse:
    """Answer ``query`` (a read: no lock, nothing recorded): 200 ``{"data": ...}`` or the refusal."""
    return result_response(engine_of(request).query(query))
