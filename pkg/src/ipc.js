// The Hypergolix 0.1.0 IPC codec (docs/protocol/ipc.md): one websocket
// message = version(2) = 00 00 ‖ code(2 ASCII) ‖ token(u16 BE) ‖ body.

import { ApiId, Ghid } from './ghid.js';

/** Header length. */
export const HEADER_LEN = 6;
/** The subprotocol that asks the service for GHIDs as they are. */
export const NATIVE_GHIDS_SUBPROTOCOL = 'hypergolix-ipc.native-ghids';
const NONE65 = new Uint8Array(65);

/** A malformed message. */
export class IpcFormatError extends Error {
  constructor(message) {
    super(message);
    this.name = 'IpcFormatError';
  }
}

/** Encodes one message. */
export function encode(code, token, body = new Uint8Array(0)) {
  if (typeof code !== 'string' || code.length !== 2) throw new TypeError('a code is 2 ASCII characters');
  const out = new Uint8Array(HEADER_LEN + body.length);
  out[2] = code.charCodeAt(0);
  out[3] = code.charCodeAt(1);
  out[4] = (token >> 8) & 0xff;
  out[5] = token & 0xff;
  out.set(body, HEADER_LEN);
  return out;
}

/** Decodes one message: `{ code, token, body }`; throws IpcFormatError. */
export function decode(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (b.length < HEADER_LEN) throw new IpcFormatError('a message shorter than its header');
  if (b[0] !== 0 || b[1] !== 0) throw new IpcFormatError(`unknown protocol version ${b[0]}.${b[1]}`);
  return {
    code: String.fromCharCode(b[2], b[3]),
    token: (b[4] << 8) | b[5],
    body: b.subarray(HEADER_LEN),
  };
}

/** Concatenates byte arrays. */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function isNone(b) {
  return b.every((x) => x === 0);
}

/** A GHID from exactly 65 bytes (65 zero bytes = null). */
export function ghidOrNull(b) {
  if (b.length !== 65) throw new IpcFormatError('expected a 65-byte GHID');
  return isNone(b) ? null : new Ghid(b);
}

/** GHIDs from a body of `n` × 65 bytes. */
export function ghids(body, n) {
  if (body.length !== 65 * n) throw new IpcFormatError(`expected ${n} GHIDs`);
  const out = [];
  for (let i = 0; i < n; i++) {
    const g = ghidOrNull(body.subarray(65 * i, 65 * (i + 1)));
    if (!g) throw new IpcFormatError('a GHID is required');
    out.push(g);
  }
  return out;
}

/** The length of an object definition without its state. */
export const OBJDEF_HEADER_LEN = 1 + 65 + 65 + 1 + 1 + 1 + 65 + 1;

function flag(b) {
  if (b > 1) throw new IpcFormatError('a boolean must be 00 or 01');
  return b === 1;
}

/**
 * Parses an object definition: `{ address, author, private, dynamic,
 * legroom, apiId, isLink, state }` (address/author/apiId may be null).
 */
export function parseObjDef(b) {
  if (b.length < OBJDEF_HEADER_LEN) throw new IpcFormatError('an object definition is too short');
  if (b[0] !== 0) throw new IpcFormatError('unknown object definition version');
  const api = b.subarray(134, 199);
  return {
    address: ghidOrNull(b.subarray(1, 66)),
    author: ghidOrNull(b.subarray(66, 131)),
    private: flag(b[131]),
    dynamic: flag(b[132]),
    legroom: b[133],
    apiId: isNone(api) ? null : new ApiId(Uint8Array.from(api)),
    isLink: flag(b[199]),
    state: Uint8Array.from(b.subarray(OBJDEF_HEADER_LEN)),
  };
}

/** Encodes an object definition (see {@link parseObjDef}). */
export function packObjDef(d) {
  return concat(
    Uint8Array.of(0),
    d.address ? d.address.bytes : NONE65,
    d.author ? d.author.bytes : NONE65,
    Uint8Array.of(d.private ? 1 : 0, d.dynamic ? 1 : 0, d.legroom ?? 0),
    d.apiId ? d.apiId.bytes : NONE65,
    Uint8Array.of(d.isLink ? 1 : 0),
    d.state,
  );
}

/** The error code and message of an `NK` body. */
export function parseNak(body) {
  if (body.length < 2) return { code: null, message: '' };
  return {
    code: (body[0] << 8) | body[1],
    message: new TextDecoder().decode(body.subarray(2)),
  };
}
