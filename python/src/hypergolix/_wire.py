"""The IPC codec (docs/protocol/ipc.md): one websocket message is
`version(2) = 00 00 ‖ code(2 ASCII) ‖ token(u16 BE) ‖ body`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .exceptions import HGXLinkError
from .ids import ApiID, Ghid

HEADER_LEN = 6
#: The subprotocol that asks the service for GHIDs as they are.
NATIVE_GHIDS = "hypergolix-ipc.native-ghids"
NONE65 = bytes(65)
OBJDEF_HEADER_LEN = 200


class WireError(HGXLinkError, ValueError):
    """A malformed message from the service."""


@dataclass(frozen=True)
class Message:
    """One decoded message."""

    code: str
    token: int
    body: bytes


def encode(code: str, token: int, body: bytes = b"") -> bytes:
    """One message."""
    return b"\x00\x00" + code.encode("ascii") + token.to_bytes(2, "big") + body


def decode(data: bytes) -> Message:
    """Parses one message; `WireError` if it is not one."""
    if len(data) < HEADER_LEN:
        raise WireError("a message shorter than its header")
    if data[:2] != b"\x00\x00":
        raise WireError(f"unknown protocol version {data[0]}.{data[1]}")
    try:
        code = data[2:4].decode("ascii")
    except UnicodeDecodeError as exc:
        raise WireError("a code is 2 ASCII bytes") from exc
    return Message(code, int.from_bytes(data[4:6], "big"), bytes(data[6:]))


def ghid_or_none(b: bytes) -> Optional[Ghid]:
    """A GHID from 65 bytes (65 zero bytes: None)."""
    if len(b) != 65:
        raise WireError(f"expected a 65-byte GHID, got {len(b)} bytes")
    if b == NONE65:
        return None
    try:
        return Ghid.from_bytes(b)
    except ValueError as exc:
        raise WireError(str(exc)) from exc


def ghid_list(body: bytes) -> list[Ghid]:
    """Any number of GHIDs, none of them None (a `?S` answer)."""
    if len(body) % 65:
        raise WireError(f"a list of GHIDs is a multiple of 65 bytes, not {len(body)}")
    return ghids(body, len(body) // 65)


def ghids(body: bytes, n: int) -> list[Ghid]:
    """`n` GHIDs, none of them None, from exactly `65 n` bytes."""
    if len(body) != 65 * n:
        raise WireError(f"expected {n} GHIDs, got {len(body)} bytes")
    out = []
    for i in range(n):
        g = ghid_or_none(body[65 * i : 65 * (i + 1)])
        if g is None:
            raise WireError("a GHID is required")
        out.append(g)
    return out


@dataclass
class ObjDef:
    """An object definition (objdef) as the service sends and takes it."""

    address: Optional[Ghid]
    author: Optional[Ghid]
    private: bool
    dynamic: bool
    legroom: int
    api_id: Optional[ApiID]
    is_link: bool
    state: bytes

    def pack(self) -> bytes:
        """The 200-byte header and the state."""
        if not 0 <= self.legroom <= 255:
            raise ValueError("legroom is 0..255")
        return b"".join(
            (
                b"\x00",
                bytes(self.address) if self.address else NONE65,
                bytes(self.author) if self.author else NONE65,
                bytes((int(self.private), int(self.dynamic), self.legroom)),
                bytes(self.api_id) if self.api_id else NONE65,
                bytes((int(self.is_link),)),
                self.state,
            )
        )

    @classmethod
    def parse(cls, b: bytes) -> ObjDef:
        """Parses one; `WireError` if malformed."""
        if len(b) < OBJDEF_HEADER_LEN:
            raise WireError("an object definition is too short")
        if b[0] != 0:
            raise WireError("unknown object definition version")

        def flag(x: int) -> bool:
            if x > 1:
                raise WireError("a boolean is 00 or 01")
            return x == 1

        api = b[134:199]
        return cls(
            address=ghid_or_none(b[1:66]),
            author=ghid_or_none(b[66:131]),
            private=flag(b[131]),
            dynamic=flag(b[132]),
            legroom=b[133],
            api_id=None if api == NONE65 else ApiID(api),
            is_link=flag(b[199]),
            state=bytes(b[OBJDEF_HEADER_LEN:]),
        )
