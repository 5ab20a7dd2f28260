"""The central console's API: sign in and out, the fleet's cabinets and alarms, Global Find and the fleet-wide
pick list. Every route but sign-in needs a console token (``Authorization: Bearer``); views read ``db.reader``
(a replica when ``adc central serve --read-url`` names one)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from controller.api.access import bearer_token
from controller.api.central.signin import ConsoleSession, ConsoleSignIn
from controller.store.central import status as fleet_status
from controller.store.central import stock
from controller.store.database import Database

router = APIRouter()


def signin_of(request: Request) -> ConsoleSignIn:
    return cast(ConsoleSignIn, request.app.state.signin)


def console_user(request: Request) -> ConsoleSession:
    # A page's own refresh (X-ADC-Passive: 1) is not activity: a console left open still signs off when idle.
    passive = request.headers.get("x-adc-passive") == "1"
    return signin_of(request).check(bearer_token(request), activity=not passive)


Signed = Annotated[ConsoleSession, Depends(console_user)]


class SignInBody(BaseModel):
    user_id: str = Field(min_length=1, max_length=64)
    pin: str = Field(min_length=1, max_length=32)


@router.post("/api/v1/central/session", summary="Sign in to the central console")
async def sign_in(body: SignInBody, request: Request) -> dict[str, Any]:
    signin = signin_of(request)
    remote = request.client.host if request.client else None
    session = await signin.sign_in(body.user_id.strip().upper(), body.pin, remote)
    return {"data": session.document(signin.rules)}


@router.get("/api/v1/central/session", summary="The signed-in console user")
async def who(request: Request, session: Signed) -> dict[str, Any]:
    document = session.document(signin_of(request).rules)
    document.pop("token")
    return {"data": document}


@router.delete("/api/v1/central/session", summary="Sign out")
async def sign_out(request: Request, session: Signed) -> dict[str, Any]:
    signin_of(request).sign_out(session.token)
    return {"data": {"signed_out": session.user_id}}


async def _read(request: Request, view: Any, *args: Any) -> Any:
    db = cast(Database, request.app.state.db)

    def run() -> Any:
        with db.reader.connect() as connection:  # a replica's when --read-url names one
            return view(connection, *args)

    return await asyncio.to_thread(run)


def _today(request: Request) -> date:
    return cast(datetime, request.app.state.clock.now()).astimezone(UTC).date()


@router.get("/api/v1/fleet/cabinets", summary="Every cabinet: link, last contact, queue, alarms, stock-outs")
async def cabinets(request: Request, _session: Signed) -> dict[str, Any]:
    now = cast(datetime, request.app.state.clock.now())

    rows = await _read(request, fleet_status.board, now)
    return {
        "data": [
            {
                "cabinet_id": c.cabinet_id,
                "name": c.name,
                "care_area": c.care_area,
                "link": c.link(now),
                "last_contact_at": c.last_contact_at.isoformat() if c.last_contact_at else None,
                "seconds_since_contact": None if c.last_contact_at is None
                else round((now - c.last_contact_at).total_seconds()),
                "queued": c.queued,
                "central_seq": c.central_seq,
                "clock_skew_s": c.clock_skew_s,
                "open_alarms": c.open_alarms,
                "stock_outs": outs,
                "console_url": c.console_url,
            }
            for c, outs in rows
        ]
    }  # fmt: skip


@router.get("/api/v1/fleet/alarms", summary="Open alarms, newest first")
async def alarms(
    request: Request, _session: Signed, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> dict[str, Any]:
    found = await _read(request, lambda connection: fleet_status.open_alarms(connection, limit=limit))
    return {
        "data": [
            {"cabinet_id": c, "seq": s, "code": code, "detail": d, "raised_at": at.isoformat()}
            for c, s, code, d, at in found
        ]
    }


def _pocket(row: stock.PocketStock) -> dict[str, Any]:
    return {
        "cabinet_id": row.cabinet_id,
        "cabinet_name": row.cabinet_name,
        "care_area": row.care_area,
        "pocket_id": row.pocket_id,
        "item_id": row.item_id,
        "item_name": row.item_name,
        "par": row.levels.par,
        "min": row.levels.min,
        "max": row.levels.max,
        "on_hand": row.on_hand,
        "usable": row.usable,
        "next_expiry": row.next_expiry.isoformat() if row.next_expiry else None,
        "status": row.status,
        "to_par": row.to_par,
    }


@router.get("/api/v1/fleet/find", summary="Global Find: which cabinets hold an item, usable units and expiry")
async def find(
    request: Request, _session: Signed, q: Annotated[str, Query(min_length=2, max_length=100)]
) -> dict[str, Any]:
    rows = await _read(request, stock.find, q, _today(request))
    return {"data": [_pocket(r) for r in rows]}


@router.get("/api/v1/fleet/picklist", summary="Fleet-wide pick list: every pocket below par, units to load")
async def picklist(
    request: Request, _session: Signed, cabinet: Annotated[list[str] | None, Query(max_length=500)] = None
) -> dict[str, Any]:
    today = _today(request)
    rows = await _read(request, lambda connection: stock.pick_list(connection, today, cabinet_ids=cabinet or ()))
    totals: dict[str, dict[str, Any]] = {}
    for r in rows:
        total = totals.setdefault(r.item_id, {"item_id": r.item_id, "item_name": r.item_name, "units": 0,
                                              "pockets": 0})  # fmt: skip
        total["units"] += r.to_par
        total["pockets"] += 1
    return {"data": {"pockets": [_pocket(r) for r in rows],
                     "items": sorted(totals.values(), key=lambda t: (-t["units"], t["item_id"]))}}  # fmt: skip
