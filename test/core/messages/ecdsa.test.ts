/**
 * The wasm signer and recoverer against ethers, the reference the contracts' tests use: the same
 * signature for any key and digest, the same signer recovered, and every non-canonical form that
 * OpenZeppelin's ECDSA refuses refused here too.
 */
import { recoverAddress, SigningKey, Wallet } from 'ethers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { recoverDigestAddress, signDigest } from '../../../core/messages/ecdsa.js';

const ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const hex32 = (x: bigint) => x.toString(16).padStart(64, '0');
const digest = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((b) => `0x${Buffer.from(b).toString('hex')}`);
const key = fc.bigInt({ min: 1n, max: ORDER - 1n }).map((k) => new Wallet(`0x${hex32(k)}`));

describe('signDigest and recoverDigestAddress', () => {
  it('sign exactly as ethers does and recover the signer ethers recovers', () => {
    fc.assert(
      fc.property(key, digest, (wallet, d) => {
        const signature = signDigest(wallet, d);
        expect(signature).toBe(new SigningKey(wallet.privateKey).sign(d).serialized);
        expect(recoverDigestAddress('Offer', d, signature)).toBe(wallet.address);
        expect(recoverAddress(d, signature)).toBe(wallet.address);
      }),
      { numRuns: 300 },
    );
  });

  it('recovers another address for another digest, never the signer', () => {
    fc.assert(
      fc.property(key, digest, digest, (wallet, d, other) => {
        fc.pre(d !== other);
        const signature = signDigest(wallet, d);
        expect(recoverDigestAddress('Offer', other, signature)).not.toBe(wallet.address);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses every non-canonical or malformed form, naming what was signed and why', () => {
    const wallet = new Wallet(`0x${'11'.repeat(32)}`);
    const d = `0x${'ab'.repeat(32)}`;
    const signature = signDigest(wallet, d);
    const r = signature.slice(2, 66);
    const s = BigInt(`0x${signature.slice(66, 130)}`);
    const v = signature.slice(130);
    const flipped = v === '1b' ? '1c' : '1b';
    const cases: [string, RegExp][] = [
      [`0x${r}${hex32(ORDER - s)}${flipped}`, /upper half of the order/],
      [`0x${r}${hex32((ORDER >> 1n) + 1n)}${v}`, /upper half of the order/],
      [`0x${r}${hex32(s)}00`, /v = 0, not 27 or 28/],
      [`0x${r}${hex32(s)}1d`, /v = 29/],
      [`0x${hex32(0n)}${hex32(s)}${v}`, /r out of range/],
      [`0x${hex32(ORDER)}${hex32(s)}${v}`, /r out of range/],
      [`0x${r}${hex32(0n)}${v}`, /s out of range/],
      [signature.slice(0, 130), /has 64 bytes, not 65/],
      ['0x1234', /has 2 bytes/],
      ['not hex', /not hex/],
    ];
    for (const [bad, why] of cases) {
      expect(() => recoverDigestAddress('Agreement', d, bad)).toThrow(
        expect.objectContaining({ code: 'INVALID_SIGNATURE', message: expect.stringMatching(why) }),
      );
      expect(() => recoverDigestAddress('Agreement', d, bad)).toThrow(/^Agreement signature /);
    }
  });

  it('refuses an r that is no point on the curve', () => {
    // x = 5 has no y on secp256k1 (5^3 + 7 = 132 is not a square mod p).
    const noPoint = `0x${hex32(5n)}${hex32(1n)}1b`;
    expect(() => recoverAddress(`0x${'ab'.repeat(32)}`, noPoint)).toThrow();
    expect(() => recoverDigestAddress('Offer', `0x${'ab'.repeat(32)}`, noPoint)).toThrow(
      expect.objectContaining({ code: 'INVALID_SIGNATURE' }),
    );
  });
});
