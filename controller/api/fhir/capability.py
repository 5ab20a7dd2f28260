"""What ``/fhir`` supports, once: the resource types, their interactions and search parameters. The routes read
their search parameters from here and ``/fhir/metadata`` publishes the same table as the CapabilityStatement, so
the statement lists exactly what the server does."""

from __future__ import annotations

from typing import Any

FHIR_VERSION = "4.0.1"
SOFTWARE_VERSION = "0.1.0"
RELEASED = "2026-11-26"

# resource type -> (interactions, search parameters as (name, type, what it matches))
RESOURCES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str, str], ...]]] = {
    "Patient": (
        ("read", "search-type"),
        (("_id", "token", "the resource id"), ("identifier", "token", "the patient's identifier (MRN)")),
    ),
    "Medication": (
        ("read", "search-type"),
        (("_id", "token", "the resource id"), ("code", "token", "an NDC (http://hl7.org/fhir/sid/ndc, any form) or "
                                                                 "a formulary code (urn:open-adc:formulary)")),
    ),
    "MedicationRequest": (
        ("read", "search-type", "create", "update"),
        (
            ("_id", "token", "the resource id"),
            ("patient", "reference", "the patient (Patient/<id> or <id>)"),
            ("status", "token", "active, on-hold or stopped"),
            ("intent", "token", "order (pharmacist-verified) or proposal"),
        ),
    ),
    "MedicationDispense": (
        ("read", "search-type"),
        (
            ("_id", "token", "the resource id (dose-<ledger seq>)"),
            ("patient", "reference", "the patient (Patient/<id> or <id>), merged identifiers included"),
            ("status", "token", "completed (every dispense record is)"),
            ("type", "token", "dose.removed, dose.returned or dose.wasted (urn:open-adc:ledger-event)"),
        ),
    ),
    "Location": (("read", "search-type"), (("_id", "token", "area.<care area> or cabinet.<cabinet>"),)),
    "Device": (("read", "search-type"), (("_id", "token", "cabinet.<cabinet> or drawer.<drawer>"),)),
}  # fmt: skip
PAGING = (("_count", "number", "page size: default 20, at most 100"), ("_offset", "number", "results to skip"))


def search_parameters(resource_type: str) -> tuple[str, ...]:
    return tuple(name for name, _, _ in RESOURCES[resource_type][1])


def capability_statement(base: str) -> dict[str, Any]:
    def param(name: str, kind: str, documentation: str) -> dict[str, str]:
        return {"name": name, "type": kind, "documentation": documentation}

    resources = []
    for resource_type, (interactions, params) in RESOURCES.items():
        resource: dict[str, Any] = {
            "type": resource_type,
            "interaction": [{"code": code} for code in interactions],
            "searchParam": [param(*p) for p in params],
        }
        if "update" in interactions:
            resource["updateCreate"] = True
        resources.append(resource)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": RELEASED,
        "publisher": "open-adc",
        "kind": "instance",
        "software": {"name": "open-adc", "version": SOFTWARE_VERSION},
        "implementation": {"description": "open-adc automated dispensing cabinet: FHIR R4 API", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Searches are lenient: unsupported parameters are ignored and left out of the "
                "Bundle's self link. Refusals are OperationOutcomes whose details carry the catalogue code.",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "OAuth",
                                }
                            ]
                        }
                    ],
                    "description": "Bearer token: an integrator's client-credentials JWT (POST /oauth/token; scopes "
                    "fhir:read, orders:write) or a cabinet user's session token.",
                },
                "resource": resources,
                "searchParam": [param(*p) for p in PAGING],
            }
        ],
    }
