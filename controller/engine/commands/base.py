"""What every command and query record shares: the payload type it returns, declared in its base class.

``StartPull(Returns[PullStep])`` says that ``engine.execute(StartPull(...))`` returns ``CommandResult[PullStep]``;
``ListDiscrepancies(Answers[DiscrepancyList])`` that ``engine.query(...)`` returns ``CommandResult[DiscrepancyList]``.
Commands change the cabinet and run one at a time under the engine's lock; queries only read, outside it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from controller.engine.results import Payload

T_co = TypeVar("T_co", bound=Payload, covariant=True)


class Returns(Generic[T_co]):
    """Base of a command whose success carries a ``T_co``."""

    __slots__ = ()


class Answers(Generic[T_co]):
    """Base of a query whose answer is a ``T_co``."""

    __slots__ = ()
