"""What the FHIR tests share: the demo cabinet behind the API (``tests.api.rig``), an integrator's token, and
checks that an answer is FHIR: ``application/fhir+json`` that validates with fhir.resources' R4B models."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from controller.api.api_clients import SCOPES
from tests.api.rig import Cabinet, bearer
from tests.api.test_role_matrix import client_token

FHIR_JSON = "application/fhir+json"


def integrator(cab: Cabinet, name: str, scopes: frozenset[str] = frozenset(SCOPES)) -> dict[str, str]:
    return bearer(client_token(cab, name, scopes))


def fhir(answer: Any, status: int = 200) -> dict[str, Any]:
    """The answer's resource, checked: status, media type, and valid R4 (R4B models) as a whole."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(FHIR_JSON), answer.headers["content-type"]
    document: dict[str, Any] = answer.json()
    get_fhir_model_class(document["resourceType"]).model_validate(document)
    return document


def outcome(answer: Any, status: int, code: str) -> dict[str, Any]:
    """An OperationOutcome refusal carrying ``code`` from the catalogue in its details."""
    document = fhir(answer, status)
    assert document["resourceType"] == "OperationOutcome", document
    issue = document["issue"][0]
    assert issue["severity"] == "error" and issue["diagnostics"]
    assert issue["details"]["coding"][0] == {
        "system": "urn:open-adc:error",
        "code": code,
        "display": issue["details"]["coding"][0]["display"],
    }
    return issue  # type: ignore[no-any-return]


def entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    return [entry["resource"] for entry in bundle.get("entry", [])]
