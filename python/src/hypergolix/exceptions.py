"""What the link raises. The names are 0.1.0's (`hypergolix.exceptions`),
so `except` clauses of apps written for it keep working."""

from __future__ import annotations

from typing import Optional


class HypergolixException(Exception):
    """Everything this package raises derives from this."""


class HGXLinkError(HypergolixException, RuntimeError):
    """A link-side failure: not connected, closed, no token, timed out."""


class ConnectionLost(HGXLinkError):
    """The connection to the service dropped while a request was in flight.

    The request may or may not have been carried out; the link reconnects
    on its own."""


class IPCError(HypergolixException, RuntimeError):
    """The service refused a request (an `NK` answer).

    `code` is the service's 2-byte error code (see `ERROR_NAMES`), and
    `message` its explanation."""

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        self.code = code
        self.message = message
        name = ERROR_NAMES.get(code, "error") if code is not None else "error"
        shown = f"{message} (NK {code:04x}: {name})" if code is not None else message
        super().__init__(shown)


class DoesNotExist(IPCError, KeyError):
    """NK 0008: no such object, or it is private to another app token."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownRecipient(IPCError):
    """NK 0100: a share's recipient is not known to the persistence server
    yet (a new agent publishes its identity when it first connects): worth
    retrying."""


class DeadObject(IPCError, TypeError, ValueError):
    """The object was discarded or deleted (and with it every later use)."""

    def __init__(self, message: str = "the object was discarded or deleted") -> None:
        super().__init__(message)


class LocallyImmutable(IPCError, TypeError):
    """This app cannot change the object: it is static, or another agent's."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class Unsharable(IPCError, TypeError):
    """Private objects cannot be shared."""

    def __init__(self, message: str = "private objects cannot be shared") -> None:
        super().__init__(message)


#: The service's NK codes (docs/protocol/ipc.md, "Error codes").
ERROR_NAMES = {
    0x0000: "generic",
    0x0001: "malformed Golix primitive",
    0x0002: "verification failure",
    0x0003: "invalid identity",
    0x0004: "unbound container",
    0x0005: "already debound",
    0x0006: "invalid target",
    0x0007: "inconsistent author",
    0x0008: "does not exist",
    0x0009: "illegal dynamic frame",
    0x000A: "a remote refused",
    0x0100: "recipient not known to the server yet",
    0xFFFF: "IPC error",
}


def from_nak(body: bytes) -> IPCError:
    """The exception an `NK` body stands for."""
    if len(body) < 2:
        return IPCError("the service refused the request")
    code = int.from_bytes(body[:2], "big")
    message = body[2:].decode("utf-8", "replace") or ERROR_NAMES.get(code, "refused")
    if code == 0x0008:
        return DoesNotExist(message, code)
    if code == 0x0100:
        return UnknownRecipient(message, code)
    return IPCError(message, code)
