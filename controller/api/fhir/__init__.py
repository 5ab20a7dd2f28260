"""FHIR R4 on ``/fhir`` (``controller.api.routes_fhir``): read and search Patient, Medication, MedicationRequest,
MedicationDispense (the ledger's dose entries), Location and Device; create and update MedicationRequest as an
order feed; ``/fhir/metadata``.

The mapping lives here, one module per group (clinical, dispenses, places), with the order feed (order_feed),
search and paging (search), refusals as OperationOutcome (outcome), ids (ids) and the CapabilityStatement
(capability). Every resource leaves through ``render``, which validates it with fhir.resources' R4B models (R4
JSON), so a mapping fault is a bug caught here, never an invalid resource sent. FHIR lives in the API layer
because the API may not import ``controller.integration``; it reads the store directly and never the engine,
except that a created order is pulled like any other.
"""
