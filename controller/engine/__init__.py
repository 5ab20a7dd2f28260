"""The engine: commands in, the state machines' decisions recorded, the hardware driven.

``cabinet.CabinetEngine`` is the facade (``execute``, ``query``, ``restore``, ``poll``). Below it, each part has one
job: ``actuation`` (the one unlock chain), ``recording`` (the only sink for decisions), ``sensing`` (snapshots to
compartment events to the workflow holding the grant), ``handlers`` (one module per workflow), ``assembly`` (wires
them together). The parts never import the facade, and no handler imports another.
"""
