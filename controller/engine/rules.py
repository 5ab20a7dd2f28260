"""The rules in force at one cabinet, held in one place so a change reaches every workflow at once.

Responsible for: the current ``Policy`` and ``FsmSettings``, the hash and source of the document they came from,
and swapping them for a changed set (an administrator's ``ChangeRules``). Workflows read the holder when they
decide, never a copy taken at start. Not responsible for parsing or validating a document
(``controller.domain.rules_document``) or for recording a change (the admin handler does, in the ledger).
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.domain.policies import Policy
from controller.fsm.settings import FsmSettings


@dataclass
class RulesHolder:
    policy: Policy
    machines: FsmSettings
    hash: str = ""
    source: str = "built in"

    def replace(self, policy: Policy, machines: FsmSettings, *, hash: str, source: str) -> None:
        self.policy, self.machines, self.hash, self.source = policy, machines, hash, source
