"""Typed read access to a parsed HL7 v2 message: our accessors over python-hl7's parse tree.

python-hl7 parses leniently into nested lists whose shape depends on which separators a field happens to contain
(a field without ``^`` is a bare string, one with ``~`` a list of repetitions). Everything above this module reads
values through ``Segment.value(field, component, subcomponent, repetition)``, which always answers a ``str``
(unescaped; ``""`` when absent, including HL7's explicit null ``""``), and every segment knows its place, so a
refusal can name ``RXE[2]-2`` in the ACK.

Not responsible for: deciding which segments a message needs (``structures``) or what the values mean.
"""

from __future__ import annotations

from typing import Any

import hl7
import hl7.util

from controller.integration.hl7.errors import Hl7Error, Location

HL7_NULL = '""'
_HEADERS = frozenset({"MSH", "BHS", "FHS"})


class Segment:
    """One segment; fields are numbered as in the standard (MSH-1 is the field separator, MSH-2 the encoding
    characters, PID-3 the identifier list)."""

    def __init__(self, raw: Any, name: str, occurrence: int, index: int) -> None:
        self._raw = raw
        self.name = name
        self.occurrence = occurrence  # 1-based among segments of this name
        self.index = index  # 0-based position in the message

    @property
    def text(self) -> str:
        """The segment as received (escapes kept)."""
        return str(self._raw)

    def location(
        self, field: int | None = None, component: int | None = None, subcomponent: int | None = None
    ) -> Location:
        return Location(self.name, self.occurrence, field, None if field is None else 1, component, subcomponent)

    def value(self, field: int, component: int = 1, subcomponent: int = 1, repetition: int = 1) -> str:
        text = self._leaf(field, repetition, component, subcomponent)
        if self.name in _HEADERS and field in (1, 2):
            return text  # the separators themselves, never unescaped
        if self._raw.esc in text:
            try:
                text = hl7.util.unescape(self._raw, text)
            except (ValueError, TypeError, IndexError) as exc:  # a broken escape sequence (\X4\, \.sp9x\)
                raise Hl7Error(
                    "hl7.bad_value",
                    f"{self.location(field, component)} holds a malformed escape sequence: {exc}",
                    location=self.location(field, component, subcomponent),
                ) from exc
        return "" if text == HL7_NULL else text.strip()

    def _leaf(self, field: int, repetition: int, component: int, subcomponent: int) -> str:
        """Walk python-hl7's tree (field > repetition > component > subcomponent, where any level may already be
        a plain string when the text had no deeper separator); a part beyond what is there is empty."""
        node: Any = self._raw
        for index in (field, repetition, component, subcomponent):
            if isinstance(node, str):
                return node if index == 1 else ""
            position = index if node is self._raw else index - 1  # a segment's fields count from 1 (0 is its id)
            if position >= len(node):
                return ""
            node = list.__getitem__(node, position)
        return node if isinstance(node, str) else str(node)

    def is_null(self, field: int) -> bool:
        """True when the field is HL7's explicit null (``""``: delete the value held)."""
        return field < len(self._raw) and str(list.__getitem__(self._raw, field)) == HL7_NULL

    def repetitions(self, field: int) -> int:
        """How many repetitions the field holds (0 when empty)."""
        if field >= len(self._raw):
            return 0
        content = self._raw[field]
        if len(content) and isinstance(content[0], hl7.Repetition):
            return len(content)
        return 1 if str(content) else 0


class Hl7Message:
    """A parsed message: its segments in order, found by name."""

    def __init__(self, parsed: Any) -> None:
        counts: dict[str, int] = {}
        self.segments: list[Segment] = []
        for index, raw in enumerate(parsed):
            name = str(raw[0]).strip() if len(raw) else ""
            counts[name] = counts.get(name, 0) + 1
            self.segments.append(Segment(raw, name, counts[name], index))

    @classmethod
    def parse(cls, text: str) -> Hl7Message:
        """Parse normalised text (CR between segments, starting with MSH)."""
        try:
            return cls(hl7.parse(text))
        except Exception as exc:  # python-hl7 raises assorted errors on garbage; all mean "cannot parse"
            raise Hl7Error(
                "hl7.unparseable", f"python-hl7 cannot parse the message: {type(exc).__name__}: {exc}"
            ) from exc

    @property
    def header(self) -> Segment:
        return self.segments[0]

    def first(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.name == name]

    def require(self, name: str, why: str) -> Segment:
        found = self.first(name)
        if found is None:
            raise Hl7Error("hl7.segment_missing", f"the message has no {name} segment ({why})", location=Location(name))
        return found
