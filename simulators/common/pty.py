"""Pseudo-terminals for serial simulators: the simulator owns the master side, the controller opens the slave
path (``/dev/pts/N``) with pyserial exactly as it would open ``/dev/ttyUSB0``."""

from __future__ import annotations

import contextlib
import os
import tty
from dataclasses import dataclass


@dataclass
class PseudoTerminal:
    master_fd: int
    slave_fd: int  # kept open so reads on the master do not fail while no client has the port open
    path: str

    def close(self) -> None:
        for fd in (self.master_fd, self.slave_fd):
            with contextlib.suppress(OSError):  # already closed
                os.close(fd)


def open_pseudo_terminal() -> PseudoTerminal:
    master_fd, slave_fd = os.openpty()
    tty.setraw(slave_fd)  # no echo, no line discipline: bytes pass unchanged
    os.set_blocking(master_fd, False)
    return PseudoTerminal(master_fd=master_fd, slave_fd=slave_fd, path=os.ttyname(slave_fd))
