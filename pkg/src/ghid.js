// GHIDs, api_ids and app tokens: fixed-size byte strings with a text form.

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** URL-safe base64 with padding (the text form 0.1.0 prints). */
export function toBase64Url(bytes) {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
    out += i + 1 < bytes.length ? B64[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.length ? B64[n & 63] : '=';
  }
  return out;
}

/** Inverse of {@link toBase64Url}; throws on anything else. */
export function fromBase64Url(text) {
  if (typeof text !== 'string' || text.length % 4 !== 0) {
    throw new TypeError('not URL-safe base64 with padding');
  }
  const clean = text.replace(/=+$/, '');
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (const ch of clean) {
    const v = B64.indexOf(ch);
    if (v < 0) throw new TypeError(`not URL-safe base64: ${JSON.stringify(ch)}`);
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/** A Golix address: 65 bytes (algorithm byte + 64-byte digest). */
export class Ghid {
  /** @param {Uint8Array} bytes exactly 65 bytes */
  constructor(bytes) {
    if (!(bytes instanceof Uint8Array) || bytes.length !== 65) {
      throw new TypeError('a GHID is 65 bytes');
    }
    this.bytes = Uint8Array.from(bytes);
    Object.freeze(this);
  }

  /** Parses the 88-character text form. */
  static fromString(text) {
    return new Ghid(fromBase64Url(text));
  }

  /** The 88-character text form. */
  toString() {
    return toBase64Url(this.bytes);
  }

  toJSON() {
    return this.toString();
  }

  /** Same address? */
  equals(other) {
    return other instanceof Ghid && this.bytes.every((b, i) => b === other.bytes[i]);
  }
}

/** An app schema id: `00` followed by 64 app bytes (65 bytes). */
export class ApiId {
  /** @param {Uint8Array} bytes 65 bytes, or 64 app bytes */
  constructor(bytes) {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('an api_id is bytes');
    if (bytes.length === 64) {
      const b = new Uint8Array(65);
      b.set(bytes, 1);
      bytes = b;
    }
    if (bytes.length !== 65) throw new TypeError('an api_id is 64 bytes (or 65 with a leading 00)');
    if (bytes[0] !== 0) throw new TypeError('a 65-byte api_id starts with a 00 byte');
    this.bytes = Uint8Array.from(bytes);
    Object.freeze(this);
  }

  /** The 0.1.0 default for plain byte objects. */
  static default() {
    const b = new Uint8Array(65);
    b[64] = 1;
    return new ApiId(b);
  }

  /** Map key. */
  key() {
    return toBase64Url(this.bytes);
  }

  equals(other) {
    return other instanceof ApiId && this.key() === other.key();
  }
}
