/**
 * The SCRAM-SHA-256 verifier pgplay sends instead of a password: checked against RFC 7677's example
 * exchange (the StoredKey and ServerKey must produce its ClientProof and ServerSignature) and against
 * the format and SASLprep behaviour of PostgreSQL.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { computeVerifier, formatVerifier, hmac, parseVerifier, saslprep, verifierMatches } from '../../src/postgres/scram.js';

// RFC 7677 section 3: user "user", password "pencil".
const SALT = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
const AUTH_MESSAGE = [
  'n=user,r=rOprNGfwEbeRWgbNEkqO',
  'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
].join(',');
const CLIENT_PROOF = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
const SERVER_SIGNATURE = '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

describe('SCRAM-SHA-256 verifier', () => {
  it('has the StoredKey and ServerKey of RFC 7677\'s example', () => {
    const v = computeVerifier('pencil', SALT, 4096);
    // A server holding only the verifier checks the client's proof: H(proof XOR HMAC(StoredKey, AuthMessage)) = StoredKey.
    const clientSignature = hmac(v.storedKey, AUTH_MESSAGE);
    const clientKey = Buffer.from(CLIENT_PROOF.map((b, i) => b ^ clientSignature[i]!));
    expect(createHash('sha256').update(clientKey).digest().toString('base64')).toBe(v.storedKey.toString('base64'));
    expect(hmac(v.serverKey, AUTH_MESSAGE).toString('base64')).toBe(SERVER_SIGNATURE);
    expect(formatVerifier(v)).toBe(`SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`);
  });

  it('round-trips and recognises its own password only', () => {
    const text = formatVerifier(computeVerifier('s3cret with spaces'));
    expect(parseVerifier(text)?.iterations).toBe(4096);
    expect(parseVerifier(text)?.salt.length).toBe(16);
    expect(verifierMatches(text, 's3cret with spaces')).toBe(true);
    expect(verifierMatches(text, 's3cret with spaces ')).toBe(false);
    expect(verifierMatches('md5' + 'a'.repeat(32), 'x')).toBe(false);
    // A fresh salt each time: two verifiers of one password differ.
    expect(formatVerifier(computeVerifier('p'))).not.toBe(formatVerifier(computeVerifier('p')));
  });

  it('applies SASLprep like PostgreSQL: ASCII as is, non-ASCII spaces mapped, NFKC', () => {
    expect(saslprep('pa ss\tword')).toBe('pa ss\tword');
    expect(saslprep('a\u00A0b')).toBe('a b');
    expect(saslprep('I\u00ADX')).toBe('IX');
    expect(saslprep('\u2168')).toBe('IX');
  });
});
