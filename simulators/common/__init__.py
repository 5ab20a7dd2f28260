"""Pieces every simulator shares: an injectable clock, the fault plan, wire timing, pseudo-terminals and the
physical-world control surface."""
