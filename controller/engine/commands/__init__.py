"""Every command and query of a cabinet, as typed records, and the unions over them.

``Command`` is what ``CabinetEngine.execute`` takes (one at a time, under its lock); ``Query`` is what
``CabinetEngine.query`` answers (reads only, outside the lock). Each record's base class names the payload its
success carries (``commands.base``).
"""

from __future__ import annotations

from controller.engine.commands.base import Answers, Returns
from controller.engine.commands.cabinet import (
    AccountFor,
    ApplyCentralConfiguration,
    ChangeRules,
    CreateUser,
    GetCabinetStatus,
    GetRules,
    ListUsers,
    RecordRefusal,
    ReportBoardFaults,
    ServiceCompartment,
    SetCriticalOverride,
    SetOverrideList,
    SetUserActive,
)
from controller.engine.commands.clinical import (
    BeginWitness,
    CancelReturn,
    CancelWitness,
    ConfirmReturn,
    DeferWaste,
    ListDiscrepancies,
    ListOverrideReviews,
    ListPendingWastes,
    ListPendingWork,
    ResolveDiscrepancy,
    ReturnDose,
    ReviewDiscrepancy,
    ReviewOverride,
    SignWitness,
    WasteDose,
)
from controller.engine.commands.pharmacy import (
    CancelFill,
    CancelRestock,
    CheckRefrigerator,
    CountBack,
    EnterPocketCount,
    FinishRestock,
    ListQuarantines,
    RecallLot,
    ReviewQuarantine,
    ScanPackage,
    SecondCount,
    ShowPickList,
    SignRestockWitness,
    StartCount,
    StartFill,
    StartRestock,
    StopCount,
    UnlockCountPocket,
)
from controller.engine.commands.pull import (
    CancelPull,
    EnterCount,
    GetPull,
    ListPulls,
    ScanRemoved,
    SearchMedications,
    SelectItem,
    StartPull,
    Take,
)
from controller.engine.commands.session import ClearLockout, GetSession, KeepAlive, Login, Logout, Tick

Command = (
    Login | Logout | ClearLockout | Tick | KeepAlive
    | StartPull | SelectItem | EnterCount | ScanRemoved | Take | CancelPull
    | BeginWitness | SignWitness | CancelWitness
    | WasteDose | DeferWaste | ReturnDose | ConfirmReturn | CancelReturn
    | ResolveDiscrepancy | ReviewDiscrepancy | ReviewOverride
    | StartRestock | CountBack | ScanPackage | FinishRestock | CancelRestock | SignRestockWitness
    | StartCount | EnterPocketCount | UnlockCountPocket | StopCount
    | RecallLot | ReviewQuarantine | CheckRefrigerator
    | StartFill | SecondCount | CancelFill
    | AccountFor | ServiceCompartment | ReportBoardFaults | RecordRefusal
    | SetCriticalOverride | ChangeRules | ApplyCentralConfiguration | SetOverrideList | CreateUser | SetUserActive
)  # fmt: skip

Query = (
    GetPull
    | ListPulls
    | SearchMedications
    | ListPendingWastes
    | ListPendingWork
    | ListDiscrepancies
    | ListOverrideReviews
    | ShowPickList
    | ListQuarantines
    | GetRules
    | GetCabinetStatus
    | GetSession
    | ListUsers
)

__all__ = [
    "AccountFor",
    "Answers",
    "ApplyCentralConfiguration",
    "BeginWitness",
    "CancelFill",
    "CancelPull",
    "CancelRestock",
    "CancelReturn",
    "CancelWitness",
    "ChangeRules",
    "CheckRefrigerator",
    "ClearLockout",
    "Command",
    "ConfirmReturn",
    "CountBack",
    "CreateUser",
    "DeferWaste",
    "EnterCount",
    "EnterPocketCount",
    "FinishRestock",
    "GetCabinetStatus",
    "GetPull",
    "GetRules",
    "GetSession",
    "KeepAlive",
    "ListDiscrepancies",
    "ListOverrideReviews",
    "ListPendingWastes",
    "ListPendingWork",
    "ListPulls",
    "ListQuarantines",
    "ListUsers",
    "Login",
    "Logout",
    "Query",
    "RecallLot",
    "RecordRefusal",
    "ReportBoardFaults",
    "ResolveDiscrepancy",
    "ReturnDose",
    "Returns",
    "ReviewDiscrepancy",
    "ReviewOverride",
    "ReviewQuarantine",
    "ScanPackage",
    "ScanRemoved",
    "SearchMedications",
    "SecondCount",
    "SelectItem",
    "ServiceCompartment",
    "SetCriticalOverride",
    "SetOverrideList",
    "SetUserActive",
    "ShowPickList",
    "SignRestockWitness",
    "SignWitness",
    "StartCount",
    "StartFill",
    "StartPull",
    "StartRestock",
    "StopCount",
    "Take",
    "Tick",
    "UnlockCountPocket",
    "WasteDose",
]
