"""Barcode scanner: interface, serial driver, in-memory fake."""

from controller.hardware.scanner.interface import Scan, Scanner, ScannerIdentity

__all__ = ["Scan", "Scanner", "ScannerIdentity"]
