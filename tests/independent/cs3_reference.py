#!/usr/bin/env python3
"""An independent implementation of Golix cipher suite 0x3, written from
docs/protocol/cipher-suite-3.md and docs/protocol/objects.md (not from the
Rust code), checked against vectors/golix-cs3.json.

For every identity and valid vector it rebuilds the object from the recorded
inputs and random bytes and requires byte equality; it opens every request as
its recipient and checks the MAC; and it requires every invalid vector it can
judge to be rejected. Prints `N passed, M failed`.
"""
import hashlib
import hmac
import json
import pathlib
import struct
import sys

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

SUITE = 0x03
ALGO = 0x02
SEAL_INFO = b"Golix CS3 v1 GARQ seal key"
MAC_KEY_INFO = b"Golix CS3 v1 GARQ MAC key"
RATCHET_INFO = b"Golix CS3 v1 frame ratchet"
RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw
# Ed25519 group order L (for rejecting non-canonical S).
L = 2**252 + 27742317777372353535851937790883648493


def H(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=64).digest()


def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.blake2b).digest()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.blake2b).digest()
        out += t
        i += 1
    return out[:length]


def u16(n): return struct.pack(">H", n)
def u32(n): return struct.pack(">I", n)
def u64(n): return struct.pack(">Q", n)


def ghid_bytes(text: str) -> bytes:
    import base64
    return base64.urlsafe_b64decode(text)


def ghid_text(b: bytes) -> str:
    import base64
    return base64.urlsafe_b64encode(b).decode()


def hashed(body: bytes) -> tuple[bytes, bytes]:
    """Appends the algorithm byte and file hash; returns (bytes, ghid)."""
    body = body + bytes([ALGO])
    d = H(body)
    return body + d, bytes([ALGO]) + d


class Identity:
    def __init__(self, random96: bytes):
        self.sign = Ed25519PrivateKey.from_private_bytes(random96[:32])
        self.enc = X25519PrivateKey.from_private_bytes(random96[32:64])
        self.xchg = X25519PrivateKey.from_private_bytes(random96[64:96])
        keys = (self.sign.public_key().public_bytes(*RAW) + self.enc.public_key().public_bytes(*RAW)
                + self.xchg.public_key().public_bytes(*RAW))
        self.gidc, self.ghid = hashed(b"GIDC" + u32(2) + bytes([SUITE]) + keys)
        self.random = random96

    @property
    def sign_pub(self): return self.sign.public_key().public_bytes(*RAW)
    @property
    def enc_pub(self): return self.enc.public_key().public_bytes(*RAW)
    @property
    def xchg_pub(self): return self.xchg.public_key().public_bytes(*RAW)

    def signed(self, body: bytes) -> bytes:
        full, g = hashed(body)
        return full + self.sign.sign(g[1:])


def make_geoc(author: Identity, secret: bytes, plaintext: bytes) -> bytes:
    key, nonce = secret[5:37], secret[37:49]
    header = b"GEOC" + u32(14) + bytes([SUITE]) + author.ghid + u64(len(plaintext) + 16)
    ct = ChaCha20Poly1305(key).encrypt(nonce, plaintext, header)
    return author.signed(header + ct)


def make_pair(magic: bytes, version: int, signer: Identity, target: bytes) -> bytes:
    return signer.signed(magic + u32(version) + bytes([SUITE]) + signer.ghid + target)


def make_gobd(binder: Identity, counter: int, targets: list[bytes], dynamic: bytes | None) -> tuple[bytes, bytes]:
    tv = b"".join(targets)
    prefix = b"GOBD" + u32(16) + bytes([SUITE]) + binder.ghid + u64(counter) + u16(len(tv)) + tv + bytes([ALGO])
    dyn = H(prefix) if dynamic is None else dynamic[1:]
    return binder.signed(prefix + dyn), bytes([ALGO]) + dyn


def request_payload(p: dict) -> bytes:
    t = p["type"]
    if t == "handshake":
        s = bytes.fromhex(p["secret"])
        return b"HS", ghid_bytes(p["target"]) + bytes([len(s)]) + s
    if t in ("ack", "nak"):
        return (b"AK" if t == "ack" else b"NK"), ghid_bytes(p["target"]) + u32(p["status"])
    return b"\x00\x00", bytes.fromhex(p["data"])


def mac_key(mine: X25519PrivateKey, peer_pub: bytes, a: bytes, b: bytes) -> bytes:
    shared = mine.exchange(X25519PublicKey.from_public_bytes(peer_pub))  # raises if all zero
    salt = bytes(x ^ y for x, y in zip(a[1:], b[1:]))
    return hkdf(salt, shared, MAC_KEY_INFO, 64)


def make_garq(author: Identity, recipient: Identity, seal_random: bytes, payload: dict) -> bytes:
    kind, body = request_payload(payload)
    inner = author.ghid + kind + u16(len(body)) + body
    prefix = b"GARQ" + u32(12) + bytes([SUITE]) + recipient.ghid
    eph = X25519PrivateKey.from_private_bytes(seal_random)
    e_pub = eph.public_key().public_bytes(*RAW)
    shared = eph.exchange(X25519PublicKey.from_public_bytes(recipient.enc_pub))
    k = hkdf(e_pub + recipient.enc_pub, shared, SEAL_INFO, 32)
    sealed = e_pub + ChaCha20Poly1305(k).encrypt(b"\x00" * 12, inner, prefix)
    full, g = hashed(prefix + u16(len(sealed)) + sealed)
    m = mac_key(author.xchg, recipient.xchg_pub, author.ghid, recipient.ghid)
    return full + hashlib.blake2b(g[1:], key=m, digest_size=64).digest()


def open_garq(me: Identity, data: bytes, ids: dict[bytes, Identity]) -> tuple[bytes, bytes]:
    """Returns (author ghid, inner container) or raises ValueError."""
    if len(data) < 76 or data[:9] != b"GARQ" + u32(12) + bytes([SUITE]):
        raise ValueError("not a suite 3 GARQ")
    if data[9:74] != me.ghid:
        raise ValueError("wrong recipient")
    s = struct.unpack(">H", data[74:76])[0]
    if len(data) != 76 + s + 1 + 64 + 64:
        raise ValueError("length")
    if data[76 + s] != ALGO or H(data[:77 + s]) != data[77 + s:141 + s]:
        raise ValueError("hash")
    sealed = data[76:76 + s]
    shared = me.enc.exchange(X25519PublicKey.from_public_bytes(sealed[:32]))
    k = hkdf(sealed[:32] + me.enc_pub, shared, SEAL_INFO, 32)
    try:
        inner = ChaCha20Poly1305(k).decrypt(b"\x00" * 12, sealed[32:], data[:74])
    except InvalidTag:
        raise ValueError("decryption failed")
    author = ids.get(inner[:65])
    if author is None:
        raise ValueError("unknown author")
    m = mac_key(me.xchg, author.xchg_pub, author.ghid, me.ghid)
    expected = hashlib.blake2b(data[77 + s:141 + s], key=m, digest_size=64).digest()
    if not hmac.compare_digest(expected, data[141 + s:]):
        raise ValueError("bad MAC")
    return author.ghid, inner


def verify_strict(pub: bytes, msg: bytes, sig: bytes) -> bool:
    if len(sig) != 64 or int.from_bytes(sig[32:], "little") >= L:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


def judge(data: bytes, ids: dict[bytes, Identity]) -> bool:
    """True if this independent parser/verifier accepts the object."""
    magic = data[:4]
    layout = {b"GIDC": 2, b"GEOC": 14, b"GOBS": 6, b"GOBD": 16, b"GDXX": 9, b"GARQ": 12}
    if magic not in layout or len(data) < 9 or data[4:8] != u32(layout[magic]) or data[8] != SUITE:
        return False
    try:
        if magic == b"GIDC":
            end = 105
        elif magic == b"GEOC":
            end = 82 + struct.unpack(">Q", data[74:82])[0]
        elif magic in (b"GOBS", b"GDXX"):
            end = 139
        elif magic == b"GOBD":
            lr = struct.unpack(">H", data[82:84])[0]
            if lr == 0 or lr % 65:
                return False
            counter = struct.unpack(">Q", data[74:82])[0]
            n = lr // 65
            if (counter == 0) != (n == 1):
                return False
            if counter == 0 and H(data[:85 + lr]) != data[85 + lr:149 + lr]:
                return False
            end = 149 + lr
        else:
            end = 76 + struct.unpack(">H", data[74:76])[0]
    except struct.error:
        return False
    want_len = end + 1 + 64 + (0 if magic == b"GIDC" else 64)
    if len(data) != want_len or data[end] != ALGO or H(data[:end + 1]) != data[end + 1:end + 65]:
        return False
    if magic in (b"GIDC", b"GARQ"):
        return True
    signer = ids.get(data[9:74])
    return signer is not None and verify_strict(signer.sign_pub, data[end + 1:end + 65], data[end + 65:])


def ratchet(secret_sh: bytes, container: bytes, dynamic: bytes) -> bytes:
    """The frame ratchet (cipher-suite-3.md): the next SH secret."""
    return b"SH\x00\x02\x03" + hkdf(container, secret_sh[5:49], RATCHET_INFO + dynamic, 44)


def rotation(v: dict, by_name: dict, ids: dict) -> tuple[bool, str]:
    """A key rotation (revocation.md): rebuild the frame secret under the new
    master, the container and the handshake; the remaining recipient reads
    the container through the handshake, the old master and the unshared
    identity cannot."""
    owner, keep, gone = by_name[v["owner"]], by_name[v["remaining"]], by_name[v["revoked"]]
    dyn, prev = ghid_bytes(v["dynamic"]), ghid_bytes(v["previous"])
    new_master = b"SH\x00\x02\x03" + bytes.fromhex(v["new_master_random"])
    fs = ratchet(new_master, prev, dyn)
    if fs.hex() != v["frame_secret"]:
        return False, "frame secret differs"
    pt = bytes.fromhex(v["plaintext"])
    c = make_geoc(owner, fs, pt)
    if c.hex() != v["container"] or not judge(c, ids):
        return False, "container differs"
    hs = {"type": "handshake", "target": v["dynamic"], "secret": new_master.hex()}
    g = make_garq(owner, keep, bytes.fromhex(v["seal_random"]), hs)
    if g.hex() != v["handshake"] or not judge(g, ids):
        return False, "handshake differs"
    author, inner = open_garq(keep, g, ids)
    if author != owner.ghid or inner[65:67] != b"HS" or inner[69:134] != dyn:
        return False, "handshake opens to something else"
    got = inner[135:135 + inner[134]]
    n = struct.unpack(">Q", c[74:82])[0]
    key = ratchet(got, prev, dyn)
    if ChaCha20Poly1305(key[5:37]).decrypt(key[37:49], c[82:82 + n], c[:82]) != pt:
        return False, "the remaining recipient reads something else"
    old = ratchet(bytes.fromhex(v["old_master"]), prev, dyn)
    try:
        ChaCha20Poly1305(old[5:37]).decrypt(old[37:49], c[82:82 + n], c[:82])
        return False, "the old master decrypts the rotated container"
    except InvalidTag:
        pass
    try:
        open_garq(gone, g, ids)
        return False, "the unshared identity opens the handshake"
    except ValueError:
        pass
    return True, ""


def main() -> int:
    root = pathlib.Path(__file__).resolve().parents[2]
    vf = json.loads((root / "vectors" / "golix-cs3.json").read_text())
    passed, failed, notes = 0, [], []

    def check(name, ok, why=""):
        nonlocal passed
        if ok:
            passed += 1
        else:
            failed.append(f"{name}: {why}")

    ids_by_name, ids = {}, {}
    for i in vf["identities"]:
        me = Identity(bytes.fromhex(i["random"]))
        ids_by_name[i["name"]] = me
        ids[me.ghid] = me
        check(f"identity {i['name']}", me.gidc.hex() == i["gidc"] and ghid_text(me.ghid) == i["ghid"], "GIDC differs")

    for v in vf["vectors"]:
        k, name = v["kind"], v["name"]
        if k == "geoc":
            b = make_geoc(ids_by_name[v["author"]], bytes.fromhex(v["secret"]), bytes.fromhex(v["plaintext"]))
            check(name, b.hex() == v["bytes"] and judge(b, ids), "bytes differ")
        elif k in ("gobs", "gdxx"):
            who = v["binder"] if k == "gobs" else v["debinder"]
            magic, ver = (b"GOBS", 6) if k == "gobs" else (b"GDXX", 9)
            b = make_pair(magic, ver, ids_by_name[who], ghid_bytes(v["target"]))
            check(name, b.hex() == v["bytes"] and judge(b, ids), "bytes differ")
        elif k == "gobd":
            dyn = ghid_bytes(v["dynamic"]) if v["dynamic"] else None
            b, d = make_gobd(ids_by_name[v["binder"]], v["counter"], [ghid_bytes(t) for t in v["targets"]], dyn)
            check(name, b.hex() == v["bytes"] and ghid_text(d) == v["expect_dynamic"] and judge(b, ids), "bytes differ")
        elif k == "garq":
            me = ids_by_name[v["recipient"]]
            b = make_garq(ids_by_name[v["author"]], me, bytes.fromhex(v["seal_random"]), v["payload"])
            ok = b.hex() == v["bytes"]
            try:
                author, _ = open_garq(me, b, ids)
                ok = ok and author == ids_by_name[v["author"]].ghid
            except ValueError as e:
                ok = False
                notes.append(f"{name}: {e}")
            check(name, ok and judge(b, ids), "bytes differ or request does not open")
        elif k == "ratchet":
            s = bytes.fromhex(v["secret"])
            out = hkdf(ghid_bytes(v["container"]), s[5:49], RATCHET_INFO + ghid_bytes(v["dynamic"]), 44)
            check(name, (b"SH\x00\x02\x03" + out).hex() == v["next"], "next secret differs")
        elif k == "rotation":
            check(name, *rotation(v, ids_by_name, ids))
        elif k == "export":
            me = ids_by_name[v["identity"]]
            nonce = bytes.fromhex(v["nonce"])
            header = b"GPRV" + u32(1) + bytes([SUITE]) + me.ghid + nonce
            b = header + ChaCha20Poly1305(bytes.fromhex(v["key"])).encrypt(nonce, me.random, header)
            check(name, b.hex() == v["bytes"], "export differs")
        elif k == "invalid":
            data = bytes.fromhex(v["bytes"])
            c = v["check"]
            if c in ("parse", "verify") and v["expect"] not in ("weak_key", "invalid_key"):
                check(name, not judge(data, ids), f"accepted, expected {v['expect']}")
            elif c == "open":
                try:
                    open_garq(ids_by_name[v["identity"]], data, ids)
                    check(name, False, f"opened, expected {v['expect']}")
                except (ValueError,):
                    check(name, True)
            elif c == "decrypt":
                s = bytes.fromhex(v["key"])
                n = struct.unpack(">Q", data[74:82])[0]
                try:
                    ChaCha20Poly1305(s[5:37]).decrypt(s[37:49], data[82:82 + n], data[:82])
                    check(name, False, "decrypted with the wrong secret")
                except InvalidTag:
                    check(name, True)
            elif c == "import":
                nonce = data[74:86]
                try:
                    ChaCha20Poly1305(bytes.fromhex(v["key"])).decrypt(nonce, data[86:], data[:86])
                    check(name, False, "imported with the wrong key")
                except InvalidTag:
                    check(name, True)
            else:
                notes.append(f"{name}: not judged independently ({c}/{v['expect']})")
        else:
            check(name, False, f"unknown vector kind {k!r}")

    for n in notes:
        print("note:", n)
    for f in failed:
        print("FAIL", f)
    print(f"{passed} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
