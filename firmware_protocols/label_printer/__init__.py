"""Label printer wire contract: ZPL II over raw TCP (port 9100) with ``~HS`` host status and ``~HI`` identify.

``table`` loads ``printer.toml`` (fault flags -> catalogue codes); ``codec`` splits the stream, parses and builds
the answers, and builds vial labels with escaped field data.
"""

from firmware_protocols.label_printer.codec import (
    CANCEL_ALL,
    HOST_IDENTIFICATION,
    HOST_STATUS,
    HostIdentification,
    HostStatus,
    ResponseError,
    VialLabel,
    ZplCommand,
    ZplDecodeError,
    ZplItem,
    ZplLabel,
    ZplSplitter,
    build_vial_label,
    encode_host_identification,
    encode_host_status,
    escape_field,
    label_fields,
    parse_host_identification,
    parse_host_status,
    unescape_field,
)
from firmware_protocols.label_printer.table import PRINTER_TABLE, PrinterFault, PrinterTable

__all__ = [
    "CANCEL_ALL",
    "HOST_IDENTIFICATION",
    "HOST_STATUS",
    "PRINTER_TABLE",
    "HostIdentification",
    "HostStatus",
    "PrinterFault",
    "PrinterTable",
    "ResponseError",
    "VialLabel",
    "ZplCommand",
    "ZplDecodeError",
    "ZplItem",
    "ZplLabel",
    "ZplSplitter",
    "build_vial_label",
    "encode_host_identification",
    "encode_host_status",
    "escape_field",
    "label_fields",
    "parse_host_identification",
    "parse_host_status",
    "unescape_field",
]
