/**
 * Ethereum signatures over 32-byte digests, on libsecp256k1 compiled to WebAssembly
 * (tiny-secp256k1, the wasm ships inside the npm package; nothing is built or downloaded, and it
 * runs the same on arm64). ethers' pure-JavaScript curve took 0.75 ms to sign and 2 ms to recover
 * on the development machine; this takes 0.11 ms and 0.29 ms, and a negotiation signs and checks
 * two offers per round (BENCHMARKS.md). Signatures are byte-identical to ethers' (both follow
 * RFC 6979 and produce low s), which the tests check against ethers on random keys.
 *
 * Verification is as strict as the market contracts (OpenZeppelin's ECDSA): 65 bytes r || s || v,
 * v 27 or 28, r and s in 1..n-1, s at most n/2 (EIP-2), so a message has exactly one valid
 * signature and a replay cannot hide behind a second form.
 */
import { computeAddress } from 'ethers/transaction';
import { getBytes, hexlify } from 'ethers/utils';
import * as secp from 'tiny-secp256k1';
import { EipError } from '../errors.js';

/** secp256k1's group order n, and n/2: an s above it is the malleated twin of a canonical one. */
const ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_ORDER = ORDER >> 1n;

/** Anything holding a private key and its address; an ethers Wallet fits. */
export interface DigestSigner {
  readonly address: string;
  readonly privateKey: string;
}

/** Signs a 32-byte digest: 0x-hex r || s || v with v = 27 or 28, as `signTypedData` returns. */
export function signDigest(signer: DigestSigner, digest: string): string {
  const { signature, recoveryId } = secp.signRecoverable(
    getBytes(digest),
    getBytes(signer.privateKey),
  );
  // 2 and 3 mean r overflowed the order: about 2^-128 likely, and not expressible in v.
  if (recoveryId > 1) throw new EipError('INVALID_SIGNATURE', 'signature needs recovery id > 1');
  const out = new Uint8Array(65);
  out.set(signature);
  out[64] = 27 + recoveryId;
  return hexlify(out);
}

/** Why `signature` is not a canonical Ethereum signature, or null when it is. */
function malformed(bytes: Uint8Array): string | null {
  if (bytes.length !== 65) return `has ${bytes.length} bytes, not 65`;
  const v = bytes[64] ?? 0;
  if (v !== 27 && v !== 28) return `has v = ${v}, not 27 or 28`;
  const r = BigInt(hexlify(bytes.subarray(0, 32)));
  const s = BigInt(hexlify(bytes.subarray(32, 64)));
  if (r === 0n || r >= ORDER) return 'has r out of range';
  if (s === 0n || s >= ORDER) return 's out of range';
  if (s > HALF_ORDER) return 'has s in the upper half of the order (malleable)';
  return null;
}

/**
 * The address that signed `digest`. Throws INVALID_SIGNATURE, naming `what` was signed, for a
 * malformed or non-canonical signature or one no key can have made.
 */
export function recoverDigestAddress(what: string, digest: string, signature: string): string {
  let bytes: Uint8Array;
  try {
    bytes = getBytes(signature);
  } catch {
    throw new EipError('INVALID_SIGNATURE', `${what} signature is not hex`);
  }
  const problem = malformed(bytes);
  if (problem) throw new EipError('INVALID_SIGNATURE', `${what} signature ${problem}`);
  let point: Uint8Array | null;
  try {
    point = secp.recover(getBytes(digest), bytes.subarray(0, 64), bytes[64] === 28 ? 1 : 0, false);
  } catch (error) {
    // tiny-secp256k1 throws (rather than returning null) for an r that is no x on the curve.
    throw new EipError('INVALID_SIGNATURE', `${what} signature recovers no key`, { cause: error });
  }
  if (!point) throw new EipError('INVALID_SIGNATURE', `${what} signature recovers no key`);
  return computeAddress(hexlify(point));
}
