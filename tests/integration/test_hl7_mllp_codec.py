"""The MLLP framing codec: golden frames, noise and restarts, chunking, the size limit; and text normalisation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from controller.integration.hl7.inbound import normalise, read_frame
from controller.integration.hl7.mllp import HEAD_BYTES, Frame, MllpDecoder, OversizeFrame, frame

MESSAGE = b"MSH|^~\\&|A|B|C|D|20261125||ADT^A01|1|P|2.5.1\rPID|1||123^^^H^MR"


def test_frame_is_vt_payload_fs_cr() -> None:
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\x0d"


def test_decoder_returns_each_payload_and_skips_noise_between_frames() -> None:
    decoder = MllpDecoder()
    found = decoder.feed(b"GET / HTTP/1.0\r\n" + frame(b"one") + b"\r\n\x00junk" + frame(b"two"))
    assert found == [Frame(b"one"), Frame(b"two")]
    assert decoder.noise_bytes == len(b"GET / HTTP/1.0\r\n") + len(b"\r\n\x00junk")


def test_a_start_block_inside_a_frame_drops_the_unfinished_one() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(b"\x0bhalf a mess" + frame(b"whole")) == [Frame(b"whole")]
    assert decoder.abandoned_frames == 1


def test_end_block_without_cr_still_ends_the_frame() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(b"\x0bone\x1c\x0btwo\x1c") == [Frame(b"one"), Frame(b"two")]
    assert decoder.noise_bytes == 0


def test_a_frame_over_the_limit_keeps_only_its_head() -> None:
    decoder = MllpDecoder(max_frame_bytes=HEAD_BYTES * 2)
    body = MESSAGE + b"\rNTE|" + b"x" * (HEAD_BYTES * 3)
    found = decoder.feed(frame(body) + frame(b"next"))
    assert isinstance(found[0], OversizeFrame)
    assert found[0].size == len(body) and found[0].head == body[:HEAD_BYTES]
    assert found[1] == Frame(b"next")


@given(
    payloads=st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b"")), max_size=6),
    noise=st.binary(max_size=40).map(lambda b: b.replace(b"\x0b", b"")),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
)
def test_any_chunking_gives_the_same_frames(payloads: list[bytes], noise: bytes, cuts: list[int]) -> None:
    stream = noise + b"".join(frame(p) + noise for p in payloads)
    decoder = MllpDecoder()
    found: list[Frame | OversizeFrame] = []
    start = 0
    for cut in [*sorted({c for c in cuts if c < len(stream)}), len(stream)]:
        found += decoder.feed(stream[start:cut])
        start = cut
    assert found == [Frame(p) for p in payloads]
    assert not decoder.in_frame


def test_normalise_accepts_lf_crlf_bom_blank_lines_and_trailing_spaces() -> None:
    text = "\ufeffMSH|^~\\&|A \r\n\r\nPID|1  \nPV1|1\rOBX|1"
    assert normalise(text) == "MSH|^~\\&|A\rPID|1\rPV1|1\rOBX|1"


def test_latin1_bytes_are_read_not_refused() -> None:
    inbound = read_frame(MESSAGE.replace(b"123", b"M\xfcller"))  # not UTF-8
    assert inbound.problem is None and inbound.message is not None
    pid = inbound.message.first("PID")
    assert pid is not None and pid.value(3) == "Müller"


def test_content_hash_ignores_the_message_timestamp_only() -> None:
    first = read_frame(MESSAGE)
    restamped = read_frame(MESSAGE.replace(b"20261125", b"20261126"))
    changed = read_frame(MESSAGE.replace(b"123", b"124"))
    assert first.content_hash == restamped.content_hash != changed.content_hash
