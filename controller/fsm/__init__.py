"""The rules and states of the cabinet as ``transitions`` machines: session, compartment and the workflows.

Machines decide; the engine acts. Nothing here awaits hardware, reads the clock or writes a record: every event
takes ``now`` as a value and every step returns a ``Decision`` whose outcomes the engine writes to the ledger.
"""
