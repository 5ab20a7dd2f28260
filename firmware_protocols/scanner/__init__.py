"""Barcode scanner wire contract: AIM symbology identifier + data + CR/LF suffix on a serial line.

``table`` loads ``symbologies.toml``; ``codec`` is the pure streaming decoder and the encoder the simulator uses.
"""

from firmware_protocols.scanner.codec import (
    GS,
    IdentifyReply,
    Scan,
    ScanDecodeError,
    ScanDecoder,
    encode_identify_reply,
    encode_scan,
)
from firmware_protocols.scanner.table import SCANNER_TABLE, ScannerTable, Symbology

__all__ = [
    "GS",
    "SCANNER_TABLE",
    "IdentifyReply",
    "Scan",
    "ScanDecodeError",
    "ScanDecoder",
    "ScannerTable",
    "Symbology",
    "encode_identify_reply",
    "encode_scan",
]
