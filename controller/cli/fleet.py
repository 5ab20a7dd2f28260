"""``adc fleet``: the cabinet's key (``adc fleet key``) and a simulated hospital (``adc fleet sim``)."""

from __future__ import annotations

from controller.cli.central import fleet_app
from controller.cli.fleet_sim import fleet_sim

fleet_app.command("sim")(fleet_sim)

__all__ = ["fleet_app"]
