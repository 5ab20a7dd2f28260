"""Hardware simulators that speak the real wire protocols. They never import ``controller``: both sides share
only ``firmware_protocols``, and tests compose the two."""
