"""A cabinet's layout and policy kept at the central: checked before they are stored (so a typo never goes down),
versioned only when the content changes, and refused for a cabinet that is not registered."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.domain.cabinet_config import LAYOUT, POLICY, config_key
from controller.errors import ControllerError
from controller.store.central import cabinet_config
from controller.store.central import ledger as central
from controller.store.database import Database

pytestmark = pytest.mark.postgres
NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
ROW = {"pocket": "D1-P01", "item": "ACETAMINOPHEN-325MG-TAB", "par": 40, "min": 12, "max": 60}


def _put(db: Database, kind: str, cabinet: str, content: dict[str, object]) -> int:
    with db.writer.begin() as connection:
        return cabinet_config.put(connection, kind, cabinet, content, NOW)


def test_versions_grow_only_when_the_content_changes(central_db: Database) -> None:
    with central_db.writer.begin() as connection:
        central.register_cabinet(connection, "CAB-4W", name="4 West", care_area="4W", public_key="k", now=NOW)
    assert _put(central_db, LAYOUT, "CAB-4W", {"pockets": [ROW]}) == 1
    assert _put(central_db, LAYOUT, "CAB-4W", {"pockets": [ROW]}) == 1
    assert _put(central_db, LAYOUT, "CAB-4W", {"pockets": [ROW | {"par": 30}]}) == 2
    policy = {"text": "[witness]\nactions = []\n", "reason": "P&T"}
    assert _put(central_db, POLICY, "CAB-4W", policy) == 1
    with central_db.reader.connect() as connection:
        assert cabinet_config.versions(connection) == {"CAB-4W.layout": 2, "CAB-4W.policy": 1}
        [(key, kind, version, content)] = cabinet_config.documents(connection, [config_key("CAB-4W", LAYOUT)])
    assert (key, kind, version, content["pockets"][0]["par"]) == ("CAB-4W.layout", LAYOUT, 2, 30)


def test_a_bad_document_or_an_unknown_cabinet_is_refused_before_anything_is_stored(central_db: Database) -> None:
    with central_db.writer.begin() as connection:
        central.register_cabinet(connection, "CAB-4W", name="4 West", care_area="4W", public_key="k", now=NOW)
    refusals = {
        "fleet.unknown_cabinet": (LAYOUT, "CAB-9Z", {"pockets": [ROW]}),
        "fleet.layout_refused": (LAYOUT, "CAB-4W", {"pockets": [ROW | {"min": 50}]}),
        "fleet.policy_refused": (POLICY, "CAB-4W", {"text": "[witnes]\n", "reason": "P&T"}),
    }
    for code, (kind, cabinet, content) in refusals.items():
        with pytest.raises(ControllerError) as raised:
            _put(central_db, kind, cabinet, content)
        assert raised.value.code == code
    with pytest.raises(ControllerError, match="needs"):
        _put(central_db, POLICY, "CAB-4W", {"text": "", "reason": " "})
    with central_db.reader.connect() as connection:
        assert cabinet_config.versions(connection) == {}
