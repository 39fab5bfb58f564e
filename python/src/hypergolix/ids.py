"""GHIDs, api_ids and app tokens: the fixed-size identifiers of the IPC API.

`Ghid`, `ApiID` and `AppToken` behave as the 0.1.0 classes of the same
names (`golix.Ghid`, `hypergolix.utils.ApiID`, `hypergolix.utils.AppToken`):
same constructors, `bytes()` forms, text forms and equality.
"""

from __future__ import annotations

import base64
import os
from typing import Union

from .exceptions import HypergolixException

#: Address lengths by GHID algorithm: 0 (api_ids, placeholders), 1 (0.1.0's
#: SHA-512) and 2 (this Hypergolix's BLAKE2b-512).
_HASH_LEN = {0: 64, 1: 64, 2: 64}

BytesLike = Union[bytes, bytearray, memoryview]


class InvalidGhid(HypergolixException, ValueError):
    """Bytes or text that are not a GHID."""


class Ghid:
    """A Golix address: an algorithm byte and a 64-byte digest (65 bytes)."""

    __slots__ = ("_algo", "_address", "__weakref__")

    def __init__(self, algo: int, address: BytesLike) -> None:
        if algo not in _HASH_LEN:
            raise InvalidGhid(f"unknown GHID algorithm {algo!r}")
        address = bytes(address)
        if len(address) != _HASH_LEN[algo]:
            raise InvalidGhid(
                f"a GHID address is {_HASH_LEN[algo]} bytes, not {len(address)}"
            )
        self._algo = algo
        self._address = address

    @property
    def algo(self) -> int:
        """The address algorithm."""
        return self._algo

    @property
    def address(self) -> bytes:
        """The 64-byte digest."""
        return self._address

    @classmethod
    def from_bytes(cls, data: BytesLike) -> Ghid:
        """Parses the 65-byte form."""
        data = bytes(data)
        if len(data) != 65:
            raise InvalidGhid(f"a GHID is 65 bytes, not {len(data)}")
        return cls(data[0], data[1:])

    @classmethod
    def from_str(cls, text: str) -> Ghid:
        """Parses the 88-character text form (URL-safe base64 with padding)."""
        try:
            raw = base64.urlsafe_b64decode(text.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise InvalidGhid(f"not a GHID: {text!r}") from exc
        return cls.from_bytes(raw)

    @classmethod
    def pseudorandom(cls, algo: int = 2) -> Ghid:
        """A random GHID (for tests)."""
        return cls(algo, os.urandom(_HASH_LEN.get(algo, 64)))

    def as_str(self) -> str:
        """The 88-character text form, as `hypergolix whoami` prints it."""
        return base64.urlsafe_b64encode(bytes(self)).decode("ascii")

    def __bytes__(self) -> bytes:
        return bytes([self._algo]) + self._address

    def __hash__(self) -> int:
        return hash(self._algo) ^ hash(self._address)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ghid):
            return NotImplemented
        return self._algo == other._algo and self._address == other._address

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.as_str()!r})"

    def __str__(self) -> str:
        return self.as_str()


class ApiID(Ghid):
    """An app schema id: `00` and 64 app-chosen bytes.

    `ApiID(b)` takes the 64 app bytes (as 0.1.0 does) or the 65-byte wire
    form with its leading `00`; anything else is a `ValueError`.
    """

    __slots__ = ()

    def __init__(self, address: BytesLike, algo: int | None = None) -> None:
        raw = bytes(address)
        if len(raw) == 65:
            if raw[0] != 0:
                raise InvalidApiId("a 65-byte api_id starts with a 00 byte")
            raw = raw[1:]
        if len(raw) != 64:
            raise InvalidApiId(
                f"an api_id is 64 bytes (or 65 with a leading 00), not {len(raw)}"
            )
        if algo not in (None, 0):
            raise InvalidApiId("an api_id's algorithm byte is 0")
        super().__init__(0, raw)

    @classmethod
    def coerce(cls, value: object) -> ApiID:
        """An `ApiID` from an `ApiID`, a `Ghid` of algorithm 0, or 64/65 bytes."""
        if isinstance(value, ApiID):
            return value
        if isinstance(value, Ghid):
            if value.algo != 0:
                raise InvalidApiId("an api_id's algorithm byte is 0")
            return cls(value.address)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return cls(value)
        raise TypeError(f"an api_id is bytes or ApiID, not {type(value).__name__}")

    @classmethod
    def pseudorandom(cls, algo: int = 0) -> ApiID:
        """A random api_id: what a new app should use for its schema."""
        return cls(os.urandom(64))

    def __repr__(self) -> str:
        return f"ApiID({self.address!r})"


class InvalidApiId(InvalidGhid):
    """Bytes that are not an api_id."""


class AppToken(bytes):
    """An app token: 16 opaque bytes naming one app of the agent."""

    TOKEN_LEN = 16

    def __init__(self, *args: object, **kwargs: object) -> None:
        if len(self) != self.TOKEN_LEN:
            raise ValueError(f"an app token is 16 bytes, not {len(self)}")

    @classmethod
    def null(cls) -> AppToken:
        """The null token (16 zero bytes): "give me a new one"."""
        return cls(cls.TOKEN_LEN)

    def __repr__(self) -> str:
        return f"AppToken({bytes(self)!r})"

    def __str__(self) -> str:
        return repr(self)


def api_id_default(last: int) -> ApiID:
    """0.1.0's default api_ids: 63 zero bytes and `last`."""
    return ApiID(bytes(63) + bytes([last]))
