"""Scenarios against a running ``adc serve`` by URL: the same steps through the REST API, the physical world through
its simulator route (``POST /api/v1/devices/simulator/actions``).

What a cabinet reached by URL can take: logging in and out, drug search, pulls (patient, item, blind count, scan,
take, cancel), the witness step, waste, restock (count-back, scan, finish, cancel), blind counts, and the physical
acts of a person (open and close a drawer, lift and close a lid, present a barcode). Expectations: the outcome
(ok, refused, detail, data), and, given an integrator client with ``ledger:read inventory:read devices:read``, the
ledger, alarms, stock and compartments, plus who is logged in.

What it cannot take, refused when the file is loaded: its own cabinet, policy, settings, start time or tick (the
server runs the cabinet it has, on its own clock), advancing time (real time cannot be skipped), faults and
repairs (fault plans live in the simulator process), a controller restart, HL7 messages, fills, recalls, reviews,
returns, discrepancy work, critical-override mode, and discrepancy and outbox expectations. Run those in process.

Not responsible for: deciding anything (the server's engine does), or the checks (``expectations``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from controller.scenarios.cabinet_doc import CabinetIndex
from controller.scenarios.model import Scenario, Step
from controller.scenarios.outcome import Outcome
from controller.scenarios.packages import barcode_of
from controller.scenarios.problems import Problem, ScenarioLoadError
from controller.scenarios.simulated_cabinet import board_numbers
from controller.scenarios.targets import RemoteTarget
from controller.store.formulary_file import load_formulary

REMOTE_ACTIONS = frozenset(
    {
        "login",
        "logout",
        "search",
        "pull",
        "start_pull",
        "select",
        "count",
        "scan_removed",
        "take",
        "cancel_pull",
        "witness",
        "begin_witness",
        "cancel_witness",
        "waste",
        "defer_waste",
        "restock",
        "count_back",
        "scan_package",
        "finish_restock",
        "cancel_restock",
        "restock_witness",
        "start_count",
        "pocket_count",
        "unlock_count_pocket",
        "stop_count",
        "open",
        "close",
        "lift_lid",
        "close_lid",
        "present",
    }
)
LOCAL_ONLY_FIELDS = ("policy", "settings", "start", "tick", "devices", "fleet")
CLIENT_EXPECTATIONS = ("inventory", "ledger", "ledger_since_start", "alarms", "compartments")
CLIENT_SCOPES = "ledger:read inventory:read devices:read"


def check_remote(scenario: Scenario, remote: RemoteTarget) -> None:
    """Refuse, before anything runs, what a cabinet reached by URL cannot do."""
    problems: list[Problem] = []

    def refuse(line: int, path: tuple[str | int, ...], message: str) -> None:
        problems.append(Problem(scenario.path, line, path, message))

    cabinet_line = scenario.lines.get("cabinet", 1)
    if scenario.own_cabinet:
        refuse(cabinet_line, ("cabinet",), "a cabinet reached by URL is the one adc serve runs: write cabinet: demo")
    for key in LOCAL_ONLY_FIELDS:
        if key in scenario.given:
            refuse(
                scenario.lines.get(key, 1),
                (key,),
                f"{key} cannot be set on a cabinet reached by URL; run this scenario without --url",
            )
    for step in scenario.steps:
        at: tuple[str | int, ...] = ("steps", step.number - 1)
        if step.action is not None and step.action not in REMOTE_ACTIONS:
            refuse(
                step.line,
                (*at, step.action),
                f"{step.action} is not possible on a cabinet reached by URL; run this scenario without --url",
            )
        expect = step.expect
        if expect.outbox:
            refuse(
                expect.line_of("outbox", step.line),
                (*at, "expect", "outbox"),
                "outbox expectations are not possible on a cabinet reached by URL",
            )
        if expect.discrepancies is not None:
            refuse(
                expect.line_of("discrepancies", step.line),
                (*at, "expect", "discrepancies"),
                "discrepancy expectations are not possible on a cabinet reached by URL",
            )
        needs_client = [k for k in CLIENT_EXPECTATIONS if _given(expect, k)]
        if needs_client and not (remote.client_id and remote.client_secret):
            refuse(
                expect.line_of(needs_client[0], step.line),
                (*at, "expect", needs_client[0]),
                f"reading {needs_client[0]} remotely needs an integrator client: give --client-id and "
                f"--client-secret (adc api client add NAME --scopes '{CLIENT_SCOPES}')",
            )
    if problems:
        raise ScenarioLoadError("scenario.not_supported_remotely", problems)


def _given(expect: Any, key: str) -> bool:
    """Did the step set this expectation? (``alarms: []`` is set: it expects none.)"""
    value = getattr(expect, key)
    return value is not None if key == "alarms" else bool(value)


class RealClock:
    def __init__(self) -> None:
        self._start = datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC)

    @property
    def elapsed(self) -> timedelta:
        return datetime.now(UTC) - self._start


@dataclass
class RemoteCabinet:
    scenario: Scenario
    http: httpx.AsyncClient
    index: CabinetIndex
    client_token: str | None = None
    token: str | None = None  # the cabinet session's bearer token
    pull_id: str | None = None
    clock: RealClock = field(default_factory=RealClock)
    _entries: list[dict[str, Any]] = field(default_factory=list)
    _cursor: int = 0

    # --- steps ----------------------------------------------------------------------------------------------------

    async def perform(self, step: Step) -> Outcome:
        action, value = step.action, step.value
        if action is None:
            return Outcome(True, commands=("check",))
        if action == "login":
            user, pin = (value["user"], value.get("pin")) if isinstance(value, Mapping) else (value, None)
            pin = pin if pin is not None else self.scenario.pin_of(str(user))
            outcome = await self._call("POST", "/api/v1/cabinet/session", {"user_id": user, "pin": str(pin)})
            if outcome.ok:
                self.token = str(outcome.data["token"])
            return outcome
        if action == "logout":
            return await self._call("DELETE", "/api/v1/cabinet/session")
        if action == "search":
            return await self._call("GET", "/api/v1/medications/search", params={"q": value})
        if action in ("pull", "start_pull"):
            patient = value["patient"] if isinstance(value, Mapping) else value
            started = await self._call("POST", "/api/v1/pulls", {"patient_id": patient})
            if started.ok:
                self.pull_id = str(started.data["pull"]["pull_id"])
            if action == "start_pull" or not started.ok:
                return started
            return await self._select(value)
        if action == "select":
            return await self._select(value)
        if action in ("count", "take", "scan_removed", "cancel_pull"):
            return await self._pull_step(action, value)
        if action in ("witness", "restock_witness"):
            user, pin = (value["user"], value.get("pin")) if isinstance(value, Mapping) else (value, None)
            body = {"user_id": user, "pin": str(pin if pin is not None else self.scenario.pin_of(str(user)))}
            path = (
                "/api/v1/cabinet/session/witness/signature"
                if action == "witness"
                else "/api/v1/restocks/current/witness"
            )
            return await self._call("POST", path, body)
        if action == "begin_witness":
            return await self._call("POST", "/api/v1/cabinet/session/witness", {"kind": value})
        if action == "cancel_witness":
            return await self._call("DELETE", "/api/v1/cabinet/session/witness")
        if action == "waste":
            body = {"amount": str(value["amount"]), "unit": value["unit"], "reason": value.get("reason")}
            return await self._call(
                "POST", "/api/v1/wastes", body | ({"note": value["note"]} if "note" in value else {})
            )
        if action == "defer_waste":
            return await self._call("POST", "/api/v1/wastes/deferred", {})
        return await self._pharmacy_or_world(action, value)

    async def _select(self, value: Mapping[str, Any]) -> Outcome:
        names = {
            "order": "order_id",
            "item": "item_id",
            "override": "override_reason",
            "pocket": "pocket_id",
            "acknowledge_allergies": "acknowledge_allergies",
        }
        body = {names[k]: v for k, v in value.items() if k in names}
        return await self._call("POST", f"/api/v1/pulls/{self.pull_id}/item", body)

    async def _pull_step(self, action: str, value: Any) -> Outcome:
        if action == "count":
            return await self._call("POST", f"/api/v1/pulls/{self.pull_id}/count", {"count": value})
        if action == "take":
            return await self._call("POST", f"/api/v1/pulls/{self.pull_id}/take", {"quantity": value})
        if action == "scan_removed":
            await self._present(value)
            return await self._call("POST", f"/api/v1/pulls/{self.pull_id}/scan", {})
        return await self._call("POST", f"/api/v1/pulls/{self.pull_id}/cancel")

    async def _pharmacy_or_world(self, action: str, value: Any) -> Outcome:
        if action == "restock":
            names = {"pocket": "pocket_id", "kind": "kind", "quantity": "quantity", "source": "source"}
            return await self._call("POST", "/api/v1/restocks", {names[k]: v for k, v in value.items()})
        if action == "count_back":
            return await self._call("POST", "/api/v1/restocks/current/count-back", {"count": value})
        if action == "scan_package":
            await self._present(value)
            return await self._call("POST", "/api/v1/restocks/current/scan", {"units": int(value.get("units", 1))})
        if action in ("finish_restock", "cancel_restock"):
            return await self._call("POST", f"/api/v1/restocks/current/{action.removesuffix('_restock')}")
        if action == "start_count":
            kind = "cycle_count" if value.get("kind") == "cycle" else "shift_change_count"
            body: dict[str, Any] = {"kind": kind} | ({"pocket_ids": value["pockets"]} if value.get("pockets") else {})
            return await self._call("POST", "/api/v1/counts", body)
        if action == "pocket_count":
            return await self._call(
                "POST", f"/api/v1/counts/current/pockets/{value['pocket']}", {"count": value["count"]}
            )
        if action in ("unlock_count_pocket", "stop_count"):
            return await self._call(
                "POST", f"/api/v1/counts/current/{'unlock' if action.startswith('unlock') else 'stop'}"
            )
        if action == "present":
            await self._present(value)
            return Outcome.physical("scanner.present", {})
        board_action = {
            "open": "open_drawer",
            "close": "close_drawer",
            "lift_lid": "lift_lid",
            "close_lid": "close_lid",
        }
        numbers = dict(board_numbers(self.index, str(value)))
        return await self._act("io_board", board_action[action], numbers)

    async def _present(self, package: Mapping[str, Any]) -> None:
        text, symbology = barcode_of(package, self.index)
        outcome = await self._act("scanner", "present", {"barcode_text": text, "symbology": symbology})
        if not outcome.ok:
            raise RuntimeError(f"presenting the package failed: {outcome.describe()}")

    async def _act(self, device: str, action: str, args: Mapping[str, Any]) -> Outcome:
        body = {"device": device, "action": action, "args": dict(args)}
        outcome = await self._call("POST", "/api/v1/devices/simulator/actions", body)
        if not outcome.ok and outcome.code == "api.validation":
            return Outcome.impossible_act(outcome.detail or "refused")
        await self._seen()
        return Outcome(outcome.ok, outcome.code, outcome.detail, outcome.data, (f"{device}.{action}",))

    async def _seen(self) -> None:
        """The remote cabinet sees the world through its own poller: wait for two more of its sensor reads (or,
        without a client to ask, for three poll periods at the default 10 Hz)."""
        if not self.client_token:
            await asyncio.sleep(0.3)
            return
        start = (await self._read("/api/v1/devices"))["io_board"]["reads"]
        deadline = time.monotonic() + 5.0
        while (await self._read("/api/v1/devices"))["io_board"]["reads"] < start + 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def _call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, params: Mapping[str, Any] | None = None
    ) -> Outcome:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        answer = await self.http.request(method, path, json=body, params=params, headers=headers)
        label = (f"{method} {path}",)
        payload = answer.json() if answer.content else {}
        if answer.is_success:
            data = payload.get("data", payload) if isinstance(payload, dict) else {"data": payload}
            return Outcome(True, data=data if isinstance(data, dict) else {"data": data}, commands=label)
        return Outcome(
            False,
            str(payload.get("code", f"http.{answer.status_code}")),
            str(payload.get("detail", "")),
            dict(payload.get("data") or {}),
            label,
        )

    # --- what expectations read -----------------------------------------------------------------------------------

    async def _read(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.client_token}"} if self.client_token else {}
        answer = await self.http.get(path, params=params, headers=headers)
        answer.raise_for_status()
        return answer.json()["data"]

    async def _catch_up(self) -> None:
        if not self.client_token:
            return
        while True:
            page = await self._read("/api/v1/ledger", {"after_seq": self._cursor, "limit": 500})
            self._entries += page["entries"]
            if page["entries"]:
                self._cursor = int(page["entries"][-1]["seq"])
            if page["next_after_seq"] is None:
                return

    async def head(self) -> int:
        await self._catch_up()
        return self._cursor

    async def entries(self, after: int, upto: int | None = None) -> list[dict[str, Any]]:
        await self._catch_up()
        return [e for e in self._entries if e["seq"] > after and (upto is None or e["seq"] <= upto)]

    async def stock(self) -> dict[str, tuple[int, dict[str, int]]]:
        pockets = await self._read("/api/v1/inventory/pockets")
        return {p["pocket_id"]: (p["quantity"], {lot["lot"]: lot["quantity"] for lot in p["lots"]}) for p in pockets}

    async def discrepancies(self) -> list[dict[str, Any]]:
        raise NotImplementedError("refused at load time for remote cabinets")

    async def outbox(self, after: int, upto: int) -> list[dict[str, Any]]:
        raise NotImplementedError("refused at load time for remote cabinets")

    async def compartments(self) -> dict[str, str]:
        return dict((await self._read("/api/v1/devices"))["compartments"])

    async def logged_in(self) -> str | None:
        if not self.token:
            return None
        answer = await self.http.get("/api/v1/cabinet/session", headers={"Authorization": f"Bearer {self.token}"})
        return str(answer.json()["data"]["user_id"]) if answer.is_success else None


@asynccontextmanager
async def open_remote_cabinet(scenario: Scenario, remote: RemoteTarget) -> AsyncIterator[RemoteCabinet]:
    index = CabinetIndex.of(scenario.cabinet, load_formulary())
    async with httpx.AsyncClient(base_url=remote.url, timeout=30.0) as http:
        cabinet = RemoteCabinet(scenario, http, index)
        if remote.client_id and remote.client_secret:
            answer = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "scope": CLIENT_SCOPES},
                auth=(remote.client_id, remote.client_secret),
            )
            answer.raise_for_status()
            cabinet.client_token = str(answer.json()["access_token"])
        await _wait_ready(http)
        try:
            yield cabinet
        finally:
            if cabinet.token:
                await http.delete("/api/v1/cabinet/session", headers={"Authorization": f"Bearer {cabinet.token}"})


async def _wait_ready(http: httpx.AsyncClient, limit_s: float = 30.0) -> None:
    """A cabinet that just started answers 503 until its devices are up."""
    deadline = time.monotonic() + limit_s
    while True:
        answer = await http.get("/ready")
        if answer.is_success or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.5)
