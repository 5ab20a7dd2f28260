"""problem+json (RFC 9457): the one place an error or an engine refusal becomes an HTTP answer.

Responsible for: the ``Problem`` body (type URI from the catalogue code, the catalogue's title and HTTP status,
the detail for a person, the code, the values involved as ``context``); ``ApiError``, the exception routes and
dependencies raise; turning a ``CommandResult`` into 200 JSON or a problem; the exception handlers that make every
other failure (validation, malformed JSON, unknown route, a bug) a problem too. A bug answers 500 with a
correlation id and logs the traceback without the exception's message or any request data (either could carry
patient data). Not responsible for deciding anything: the engine and the access rules do.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from controller.engine.results import CommandResult
from controller.errors import CATALOGUE, ControllerError

log = logging.getLogger("controller.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:open-adc:problem:"


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where in the request: body, query, path or header, then the field")
    msg: str
    type: str


class Problem(BaseModel):
    """Every refusal and error of this API."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:open-adc:problem:policy.witness_is_actor",
                    "title": "Witness must be a different person from the user",
                    "status": 409,
                    "detail": "NURSE1 cannot witness their own waste",
                    "code": "policy.witness_is_actor",
                    "context": {"witness": "NURSE1"},
                }
            ]
        }
    )

    type: str = Field(description="urn:open-adc:problem:<code>")
    title: str
    status: int
    detail: str
    code: str = Field(description="stable code from the error catalogue")
    context: dict[str, Any] = Field(default_factory=dict, description="the values involved")
    data: dict[str, Any] | None = Field(default=None, description="the workflow's state when the engine refused")
    errors: list[FieldError] | None = Field(default=None, description="each field that failed validation")
    correlation_id: str | None = Field(default=None, description="quote it when reporting an internal error")


class ApiError(Exception):
    """Raised by routes and dependencies; answered as problem+json by ``install_handlers``."""

    def __init__(self, code: str, detail: str, *, headers: Mapping[str, str] | None = None, **context: Any) -> None:
        if code not in CATALOGUE:
            raise KeyError(f"problem code {code!r} is not in the catalogue")
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.context = context
        self.headers = dict(headers or {})


def to_json(value: Any) -> Any:
    """What the engine returns, as JSON: amounts stay exact (Decimal as a string), times in ISO 8601."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return to_json(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, Sequence | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [to_json(item) for item in items]
    return str(value)


def status_of(code: str) -> int:
    status = CATALOGUE[code].http_status
    return status if status >= 400 else 409  # a warning code used as a refusal still refuses


def problem_response(
    code: str,
    detail: str,
    *,
    context: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    errors: list[FieldError] | None = None,
    correlation_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    definition = CATALOGUE[code]
    body = Problem(
        type=TYPE_PREFIX + code,
        title=definition.title,
        status=status_of(code),
        detail=detail,
        code=code,
        context=to_json(dict(context or {})),
        data=to_json(dict(data)) if data else None,
        errors=errors,
        correlation_id=correlation_id,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=body.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def result_response(result: CommandResult[Any]) -> JSONResponse:
    """An engine result: ``{"data": ...}`` when it succeeded, the refusal as a problem otherwise."""
    if result.ok:
        return JSONResponse({"data": to_json(dict(result.data))})
    assert result.code is not None
    return problem_response(result.code, result.detail or "", context=result.context, data=result.data)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_problem)
    app.add_exception_handler(ControllerError, _controller_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)


async def _api_problem(_connection: Request, exc: Exception) -> JSONResponse:
    """Also answers a refused WebSocket handshake (Starlette sends it as the denial response)."""
    assert isinstance(exc, ApiError)
    return problem_response(exc.code, exc.detail, context=exc.context, headers=exc.headers)


async def _controller_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ControllerError)
    return problem_response(exc.code, exc.detail, context=exc.context)


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in raw):
        return problem_response("api.malformed_json", "the body is not valid JSON")
    errors = [
        FieldError(loc=[part if isinstance(part, int) else str(part) for part in e.get("loc", ())],
                   msg=str(e.get("msg", "")), type=str(e.get("type", "")))
        for e in raw
    ]  # fmt: skip
    where = ", ".join(".".join(str(part) for part in e.loc) for e in errors) or "the request"
    # Only locations and messages: pydantic's "input" would echo the request (possibly patient data).
    return problem_response("api.validation", f"invalid: {where}", errors=errors)


_STATUS_CODES = {404: "api.not_found", 405: "api.method_not_allowed", 413: "api.body_too_large", 415: (
    "api.unsupported_media_type"), 400: "api.malformed_json"}  # fmt: skip


async def _http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "api.validation" if exc.status_code < 500 else "software.bug")
    return problem_response(code, str(exc.detail), headers=exc.headers)


def bug_response(method: str, route: str, exc: BaseException) -> JSONResponse:
    """A bug (anything raised that is not a refusal): 500 with a correlation id; the log gets the frames."""
    correlation_id = uuid.uuid4().hex
    # The frames say where; the message is left out, since an exception's text may quote a patient's data.
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("internal error %s on %s %s: %s\n%s", correlation_id, method, route, type(exc).__name__, frames)
    return problem_response(
        "software.bug",
        f"internal error; quote {correlation_id} when reporting it",
        correlation_id=correlation_id,
    )
