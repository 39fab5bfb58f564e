"""Hypergolix: end-to-end encrypted objects that sync and share.

This package is the app link to the local service (`hypergolix start`):
`HypergolixLink` and `AppObj` (the seed README's API), and 0.1.0's names
(`HGXLink`, `Obj`, `JsonObj`, `PickleObj`) for apps written for it.
"""

from .embed import HGXLink
from .exceptions import (
    ConnectionLost,
    DeadObject,
    DoesNotExist,
    HGXLinkError,
    HypergolixException,
    IPCError,
    LocallyImmutable,
    UnknownRecipient,
    Unsharable,
)
from .ids import ApiID, AppToken, Ghid
from .objproxy import JsonObj, Obj, PickleObj
from .service import HypergolixLink
from .utils import AppObj

__version__ = "0.2.0"

__all__ = [
    "AppObj",
    "ApiID",
    "AppToken",
    "ConnectionLost",
    "DeadObject",
    "DoesNotExist",
    "Ghid",
    "HGXLink",
    "HGXLinkError",
    "HypergolixException",
    "HypergolixLink",
    "IPCError",
    "JsonObj",
    "LocallyImmutable",
    "Obj",
    "PickleObj",
    "UnknownRecipient",
    "Unsharable",
]
