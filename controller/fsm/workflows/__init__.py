"""The cabinet workflows as state machines, one module each: pull, waste, discrepancy, returns, restock (with load
and unload) and count. Each decides what may happen next and says why not; none does I/O or reads the clock."""

from controller.fsm.workflows import count, discrepancy, pull, restock, returns, waste

__all__ = ["count", "discrepancy", "pull", "restock", "returns", "waste"]
