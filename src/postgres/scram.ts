/**
 * SCRAM-SHA-256 verifiers as PostgreSQL stores them in pg_authid.rolpassword (RFC 5802 and 7677):
 *
 *   SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>
 *
 * pgplay computes the verifier itself and sends only that in CREATE/ALTER ROLE ... PASSWORD, so the
 * plain password never reaches the server, its log (even with log_statement = all) or pg_stat_activity.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCRAM_ITERATIONS = 4096;
/** PostgreSQL's SCRAM_DEFAULT_SALT_LEN. */
export const SCRAM_SALT_BYTES = 16;

export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

const VERIFIER = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;

export function parseVerifier(text: string): ScramVerifier | null {
  const m = VERIFIER.exec(text);
  if (!m) return null;
  return { iterations: Number(m[1]), salt: Buffer.from(m[2]!, 'base64'), storedKey: Buffer.from(m[3]!, 'base64'), serverKey: Buffer.from(m[4]!, 'base64') };
}

export function formatVerifier(v: ScramVerifier): string {
  return `SCRAM-SHA-256$${v.iterations}:${v.salt.toString('base64')}$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`;
}

/** SaltedPassword = Hi(Normalize(password), salt, i), Hi being PBKDF2 with HMAC-SHA-256. */
export function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(Buffer.from(saslprep(password), 'utf8'), salt, iterations, 32, 'sha256');
}

export function hmac(key: Buffer, text: string | Buffer): Buffer {
  return createHmac('sha256', key).update(text).digest();
}

export function computeVerifier(password: string, salt: Buffer = randomBytes(SCRAM_SALT_BYTES), iterations: number = SCRAM_ITERATIONS): ScramVerifier {
  const salted = saltedPassword(password, salt, iterations);
  const clientKey = hmac(salted, 'Client Key');
  return {
    iterations,
    salt,
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: hmac(salted, 'Server Key'),
  };
}

/** Whether a stored verifier is this password's, recomputed with the stored salt and iterations. */
export function verifierMatches(stored: string, password: string): boolean {
  const v = parseVerifier(stored);
  if (!v) return false;
  const again = computeVerifier(password, v.salt, v.iterations);
  return (
    again.storedKey.length === v.storedKey.length &&
    timingSafeEqual(again.storedKey, v.storedKey) &&
    again.serverKey.length === v.serverKey.length &&
    timingSafeEqual(again.serverKey, v.serverKey)
  );
}

// ---- SASLprep (RFC 4013) as PostgreSQL applies it (src/common/saslprep.c) -------------------------
// A password of printable ASCII is used as it is. Otherwise: non-ASCII spaces become a space, the
// characters "commonly mapped to nothing" go, the rest is NFKC-normalized; a result with prohibited
// characters makes PostgreSQL fall back to the raw bytes, and so does pgplay.

const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;
// C.2.1, C.2.2 (controls), C.3 (private use), C.4 (non-characters, BMP part), C.5 (surrogates are
// impossible in a well-formed JS string after normalization), C.6-C.9, and unassigned code points are
// not checked here: PostgreSQL's fallback for them is the raw string, which is what a failure gives.
const PROHIBITED = /[\u0000-\u001F\u007F-\u009F\u0340\u0341\u06DD\u070F\u180E\u200E\u200F\u202A-\u202E\u2028\u2029\u2060-\u2063\u206A-\u206F\uD800-\uDFFF\uE000-\uF8FF\uFDD0-\uFDEF\uFFF9-\uFFFF]/;

export function saslprep(password: string): string {
  if (/^[\x00-\x7F]*$/.test(password)) return password;
  const mapped = password.replace(MAPPED_TO_NOTHING, '').replace(NON_ASCII_SPACE, ' ').normalize('NFKC');
  if (mapped === '' || PROHIBITED.test(mapped)) return password;
  return mapped;
}
