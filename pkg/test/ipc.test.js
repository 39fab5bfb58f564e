// The codec against every message captured from Hypergolix 0.1.0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { ipc, Ghid, ApiId, toBase64Url, fromBase64Url } from '../src/index.js';

// Captured from 0.1.0; see tests/interop/README.md.
const samples = fileURLToPath(new URL('../../tests/interop/ipc-samples', import.meta.url));

const hex = (s) => Uint8Array.from(s.trim().match(/../g).map((h) => parseInt(h, 16)));

test('every captured 0.1.0 message decodes and re-encodes byte for byte', () => {
  const files = readdirSync(samples).filter((f) => f.endsWith('.hex'));
  assert.ok(files.length >= 90, `found ${files.length} samples`);
  let objdefs = 0;
  for (const f of files) {
    const bytes = hex(readFileSync(join(samples, f), 'utf8'));
    const m = ipc.decode(bytes);
    assert.deepEqual(ipc.encode(m.code, m.token, m.body), bytes, f);
    if ((m.code === '+O' || m.code === '!O') && m.body.length >= ipc.OBJDEF_HEADER_LEN) {
      const d = ipc.parseObjDef(m.body);
      assert.deepEqual(ipc.packObjDef(d), Uint8Array.from(m.body), f);
      objdefs++;
    }
  }
  assert.ok(objdefs > 10, `${objdefs} object definitions round-tripped`);
});

test('malformed messages are typed errors, never crashes', () => {
  assert.throws(() => ipc.decode(new Uint8Array(3)), ipc.IpcFormatError);
  assert.throws(() => ipc.decode(Uint8Array.of(1, 0, 65, 75, 0, 0)), ipc.IpcFormatError);
  assert.throws(() => ipc.parseObjDef(new Uint8Array(10)), ipc.IpcFormatError);
  const bad = new Uint8Array(ipc.OBJDEF_HEADER_LEN);
  bad[131] = 7;
  assert.throws(() => ipc.parseObjDef(bad), ipc.IpcFormatError);
  for (let i = 0; i < 2000; i++) {
    const junk = Uint8Array.from({ length: (i * 7) % 300 }, (_, j) => (i * 31 + j * 17) & 0xff);
    try {
      const m = ipc.decode(junk);
      ipc.parseObjDef(m.body);
    } catch (e) {
      assert.ok(e instanceof ipc.IpcFormatError || e instanceof TypeError, e.message);
    }
  }
});

test('GHID text form is 0.1.0\'s (URL-safe base64 with padding)', () => {
  const b = Uint8Array.from({ length: 65 }, (_, i) => (i * 37) & 0xff);
  b[0] = 2;
  const g = new Ghid(b);
  assert.equal(g.toString().length, 88);
  assert.ok(Ghid.fromString(g.toString()).equals(g));
  assert.equal(toBase64Url(Uint8Array.of(0xfb, 0xff)), '-_8=');
  assert.deepEqual(fromBase64Url('-_8='), Uint8Array.of(0xfb, 0xff));
  assert.throws(() => Ghid.fromString('abc'), TypeError);
  assert.ok(ApiId.default().bytes[64] === 1);
  assert.equal(new ApiId(new Uint8Array(64).fill(7)).bytes[0], 0);
});

test('an api_id is 64 bytes or 65 with a leading 00, the same rule as the Rust and Python links', () => {
  const app = new Uint8Array(64).fill(5);
  const long = new Uint8Array(65);
  long.set(app, 1);
  assert.ok(new ApiId(app).equals(new ApiId(long)));
  const bad = Uint8Array.from(long);
  bad[0] = 1;
  assert.throws(() => new ApiId(bad), /starts with a 00 byte/);
  for (const n of [0, 63, 66]) {
    assert.throws(() => new ApiId(new Uint8Array(n)), /64 bytes \(or 65 with a leading 00\)/);
  }
  assert.throws(() => new ApiId('not bytes'), TypeError);
});
