#!/usr/bin/env python3
"""Seeds every fuzz corpus with the golden-vector objects (valid and invalid)
and the captured suite-0x1 objects, so fuzzing starts from real structure."""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent
vectors = json.loads((root.parent / "vectors" / "golix-cs3.json").read_text())
seeds = [bytes.fromhex(i["gidc"]) for i in vectors["identities"]]
seeds += [bytes.fromhex(v["bytes"]) for v in vectors["vectors"] if "bytes" in v]
# Captured from 0.1.0 (tests/interop/README.md); missing seeds are an error.
legacy = sorted((root.parent / "tests" / "interop" / "cs1-objects").glob("*.golix"))
if not legacy:
    sys.exit("no captured 0.1.0 objects in tests/interop/cs1-objects")
seeds += [p.read_bytes() for p in legacy]
# A locked storage key (HGXL v1, 64 KiB / 1 pass / 1 lane) for
# secrets_and_exports: header, salt, nonce, then a sealed key that does not
# open (the fuzzer mutates from here).
hgxl = b"HGXL\x01" + (64).to_bytes(4, "big") + (1).to_bytes(4, "big") + (1).to_bytes(4, "big")
hgxl += bytes(range(16)) + bytes(12) + bytes(48)
seeds.append(hgxl)
# An export file's shape (HGXE v1, password, a user id, that lock, a nonce
# and a body that does not open), and a valid recovery phrase (BIP39's
# vector for 0x7f × 16).
seeds.append(b"HGXE\x00\x01\x01" + b"\x02" + bytes(64) + hgxl + bytes(12) + bytes(40))
seeds.append(b"legal winner thank year wave sausage worth useful legal winner thank yellow")
for target in sys.argv[1:]:
    d = root / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(seeds):
        body = s[8:] if target == "parse_each" else s  # parse_each supplies magic+version itself
        if target == "parse_each":
            kinds = [b"GIDC", b"GEOC", b"GOBS", b"GOBD", b"GDXX", b"GARQ"]
            body = bytes([kinds.index(s[:4]) if s[:4] in kinds else 0]) + body
        (d / f"seed-{i:03}").write_bytes(body)
print(f"seeded {len(seeds)} inputs into {len(sys.argv) - 1} corpora")
