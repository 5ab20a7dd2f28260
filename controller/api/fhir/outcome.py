"""Refusals on ``/fhir`` as FHIR answers them: an OperationOutcome (``application/fhir+json``) whose issue names
the FHIR issue type, the catalogue code and title (``details``, coding system ``urn:open-adc:error``), what was
wrong (``diagnostics``) and where (``expression``, FHIRPath). The HTTP status is the catalogue's.

Authentication and scope refusals stay problem+json (the API's access rule answers them the same way on every
route, before any FHIR code runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse

from controller.errors import CATALOGUE

FHIR_MEDIA_TYPE = "application/fhir+json"
ERROR_SYSTEM = "urn:open-adc:error"


class FhirResponse(JSONResponse):
    media_type = FHIR_MEDIA_TYPE


class FhirError(Exception):
    """Raised by the FHIR routes; answered as an OperationOutcome."""

    def __init__(self, code: str, detail: str, *, issue: str = "processing", expression: Sequence[str] = ()) -> None:
        if code not in CATALOGUE:
            raise KeyError(f"error code {code!r} is not in the catalogue")
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.issue = issue  # FHIR issue-type: invalid, structure, required, value, not-found, conflict, ...
        self.expression = tuple(expression)

    @property
    def status(self) -> int:
        return CATALOGUE[self.code].http_status


def operation_outcome(errors: Sequence[FhirError]) -> dict[str, Any]:
    issues = []
    for error in errors:
        issue: dict[str, Any] = {
            "severity": "error",
            "code": error.issue,
            "details": {
                "coding": [{"system": ERROR_SYSTEM, "code": error.code, "display": CATALOGUE[error.code].title}],
                "text": error.detail,
            },
            "diagnostics": error.detail,
        }
        if error.expression:
            issue["expression"] = list(error.expression)
        issues.append(issue)
    return {"resourceType": "OperationOutcome", "issue": issues}


def outcome_response(error: FhirError, *more: FhirError) -> FhirResponse:
    return FhirResponse(operation_outcome([error, *more]), status_code=error.status)
