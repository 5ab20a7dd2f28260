"""Label printer (ZPL II over TCP): interface, driver, in-memory fake."""

from controller.hardware.label_printer.interface import LabelPrinter, PrinterIdentity

__all__ = ["LabelPrinter", "PrinterIdentity"]
