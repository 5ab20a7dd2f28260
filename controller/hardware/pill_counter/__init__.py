"""Pill counter / counting robot: the ``PillCounter`` and ``CanisterRobot`` interfaces (``interface``), the driver
on ``SerialLink`` (``driver``) and an in-memory fake (``fake``)."""
