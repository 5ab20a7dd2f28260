"""The cabinet workflows as state machines, one module each: pull, waste, discrepancy (return, restock and counts
follow). Each decides what may happen next and says why not; none does I/O or reads the clock."""
