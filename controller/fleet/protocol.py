"""The fleet's wire contract between a cabinet and the central server, over NATS JetStream.

Responsible for: the subject, stream and bucket names; the uplink envelope of one ledger entry (JSON of the
entry's cabinet, seq, links and canonical body, published with ``Nats-Msg-Id = <cabinet>:<seq>`` so JetStream drops a
republish inside its duplicate window); heartbeats; the downlink records (the central's acknowledged head, directory
records with their version); and the Ed25519 signature every cabinet message carries (the central holds only public
keys). Decoding refuses with a typed error naming what was wrong; nothing here touches a network or a database.

Not responsible for: what either side does with a message (``controller.fleet.central_worker``,
``controller.fleet.forwarder``).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from controller.domain import directory
from controller.domain.chain import ChainEntry
from controller.domain.directory import DirectoryUser, DownlinkDocument
from controller.errors import SafetyError, VerificationError

LEDGER_STREAM = "ADC_LEDGER"
LEDGER_SUBJECTS = "adc.ledger.>"
DEAD_LETTER_STREAM = "ADC_DEAD"
DEAD_LETTER_SUBJECT = "adc.dead.ledger"
INGEST_CONSUMER = "central-ingest"
HEADS_BUCKET = "adc_heads"
USERS_BUCKET = "adc_users"
CENSUS_BUCKET = "adc_census"  # <care area>.<patient>: a care area's patients and their orders
FORMULARY_BUCKET = "adc_formulary"  # <item>: the hospital's formulary
CABINETS_BUCKET = "adc_cabinets"  # <cabinet>.layout, <cabinet>.policy: each cabinet's own configuration
HEARTBEAT_SUBJECTS = "adc.heartbeat.*"
CENTRAL_QUEUE = "central"

MSG_ID_HEADER = "Nats-Msg-Id"
SIGNATURE_HEADER = "Adc-Signature"

# A cabinet id is one subject token: no dots, spaces or wildcards.
_CABINET_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_cabinet_id(cabinet_id: str) -> str:
    if not _CABINET_ID.match(cabinet_id):
        raise VerificationError(
            "fleet.unreadable_message", f"cabinet id {cabinet_id!r} must be 1-64 letters, digits, '-' or '_'"
        )
    return cabinet_id


def ledger_subject(cabinet_id: str) -> str:
    return f"adc.ledger.{check_cabinet_id(cabinet_id)}"


def heartbeat_subject(cabinet_id: str) -> str:
    return f"adc.heartbeat.{check_cabinet_id(cabinet_id)}"


def resend_subject(cabinet_id: str) -> str:
    return f"adc.resend.{check_cabinet_id(cabinet_id)}"


def msg_id(cabinet_id: str, seq: int, *, resend: int = 0) -> str:
    """``<cabinet>:<seq>``; a publication the central asked for again (it lacks the entry: the first copy went to
    the dead letters, or the stream lost it) adds ``:r<n>``, or JetStream would drop it as a duplicate for the
    whole duplicate window. A copy the central does hold is judged a duplicate there and not applied."""
    return f"{cabinet_id}:{seq}" if resend == 0 else f"{cabinet_id}:{seq}:r{resend}"


def user_key(user_id: str) -> str:
    """A KV key for a user id (keys allow letters, digits and ``-_=/.``; anything else is hex-escaped)."""
    return directory.kv_token(user_id)


# --- signatures ---------------------------------------------------------------------------------------------------


def new_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_text(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def load_private_key(text: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text))


def public_key_text(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def sign(key: Ed25519PrivateKey, payload: bytes) -> str:
    return base64.b64encode(key.sign(payload)).decode()


def check_signature(public_key: str, payload: bytes, signature: str | None, *, cabinet_id: str) -> None:
    if not signature:
        raise SafetyError("fleet.bad_signature", f"a message from cabinet {cabinet_id} carries no signature")
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key)).verify(base64.b64decode(signature), payload)
    except (InvalidSignature, ValueError) as exc:
        raise SafetyError(
            "fleet.bad_signature", f"a message from cabinet {cabinet_id} is not signed with its registered key"
        ) from exc


# --- uplink -------------------------------------------------------------------------------------------------------


def encode_entry(entry: ChainEntry) -> bytes:
    document = {
        "cabinet_id": entry.cabinet_id,
        "seq": entry.seq,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
        "body": entry.body,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def decode_entry(payload: bytes, *, subject: str) -> ChainEntry:
    document = _json_object(payload, what="a ledger entry")
    cabinet_id, seq = document.get("cabinet_id"), document.get("seq")
    texts = [document.get(k) for k in ("prev_hash", "hash", "body")]
    if not isinstance(cabinet_id, str) or not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise VerificationError("fleet.unreadable_message", "a ledger entry must name its cabinet and a seq ≥ 1")
    if not all(isinstance(t, str) for t in texts):
        raise VerificationError("fleet.unreadable_message", "a ledger entry must carry prev_hash, hash and body")
    if subject != ledger_subject(check_cabinet_id(cabinet_id)):
        raise VerificationError(
            "fleet.unreadable_message", f"an entry of cabinet {cabinet_id} arrived on another cabinet's subject"
        )
    prev_hash, digest, body = (str(t) for t in texts)
    return ChainEntry(cabinet_id, seq, prev_hash, digest, body)


# --- heartbeats ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What a cabinet says of itself every few seconds: its clock, its chain's head and what still waits to go."""

    cabinet_id: str
    sent_at: datetime
    head_seq: int
    published_seq: int
    open_alarms: int = 0

    @property
    def queued(self) -> int:
        return max(0, self.head_seq - self.published_seq)


def encode_heartbeat(beat: Heartbeat) -> bytes:
    return json.dumps(
        {
            "cabinet_id": beat.cabinet_id,
            "sent_at": beat.sent_at.isoformat(),
            "head_seq": beat.head_seq,
            "published_seq": beat.published_seq,
            "open_alarms": beat.open_alarms,
        }
    ).encode()


def decode_heartbeat(payload: bytes) -> Heartbeat:
    document = _json_object(payload, what="a heartbeat")
    try:
        sent_at = datetime.fromisoformat(str(document["sent_at"]))
        beat = Heartbeat(
            cabinet_id=check_cabinet_id(str(document["cabinet_id"])),
            sent_at=sent_at,
            head_seq=int(document["head_seq"]),
            published_seq=int(document["published_seq"]),
            open_alarms=int(document.get("open_alarms", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError("fleet.unreadable_message", f"a heartbeat is incomplete: {exc}") from exc
    if sent_at.tzinfo is None:
        raise VerificationError("fleet.unreadable_message", "a heartbeat's clock must carry its offset")
    return beat


# --- downlink -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AcknowledgedHead:
    """The central's committed head of one cabinet's chain, which the cabinet anchors into its own ledger."""

    seq: int
    hash: str


def encode_head(head: AcknowledgedHead) -> bytes:
    return json.dumps({"seq": head.seq, "hash": head.hash}).encode()


def decode_head(payload: bytes) -> AcknowledgedHead:
    document = _json_object(payload, what="an acknowledged head")
    seq, digest = document.get("seq"), document.get("hash")
    if not isinstance(seq, int) or not isinstance(digest, str):
        raise VerificationError("fleet.unreadable_message", "an acknowledged head must carry seq and hash")
    return AcknowledgedHead(seq, digest)


def encode_directory_record(record: DirectoryUser) -> bytes:
    return json.dumps(directory.to_document(record)).encode()


def encode_downlink(document: DownlinkDocument) -> bytes:
    return json.dumps(directory.downlink_to_document(document)).encode()


def decode_downlink(payload: bytes) -> DownlinkDocument:
    try:
        return directory.downlink_from_document(_json_object(payload, what="a downlink document"))
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError("fleet.unreadable_message", f"a downlink document is incomplete: {exc}") from exc


def decode_directory_record(payload: bytes) -> DirectoryUser:
    try:
        return directory.from_document(_json_object(payload, what="a directory record"))
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError("fleet.unreadable_message", f"a directory record is incomplete: {exc}") from exc


def _json_object(payload: bytes, *, what: str) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError("fleet.unreadable_message", f"{what} is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise VerificationError("fleet.unreadable_message", f"{what} must be a JSON object")
    return document
