"""The machines' numbers and switches live in the domain layer (``controller.domain.machine_settings``), next to
``Policy``, so the rules document can hold both; this name stays for the machines that import it."""

from __future__ import annotations

from controller.domain.machine_settings import FsmSettings

__all__ = ["FsmSettings"]
