/**
 * Decrypts a v3 keystore (Web3 Secret Storage, as geth and ethers write it) with Node's own
 * scrypt, PBKDF2 and AES. ethers' Wallet does the same in JavaScript, but loading it pulls in the
 * whole of ethers (providers, contracts, word lists: about 13 MB of a Raspberry Pi's memory for
 * the agent's lifetime), and its scrypt takes seconds there where OpenSSL's takes a fraction.
 */
import { createDecipheriv, pbkdf2, scrypt, timingSafeEqual } from 'node:crypto';
import { keccak256 } from 'ethers/crypto';
import { computeAddress } from 'ethers/transaction';
import { getBytes, hexlify } from 'ethers/utils';
import { z } from 'zod';
import { EipError } from '../core/errors.js';

const hex = (bytes: number) =>
  z.string().regex(new RegExp(`^(0x)?[0-9a-fA-F]{${bytes * 2}}$`), `${bytes} bytes of hex`);
const anyHex = z.string().regex(/^(0x)?([0-9a-fA-F]{2})+$/, 'hex');

/** scrypt's N beyond this needs over a gigabyte: a file that asks for it is refused, not obeyed. */
const MAX_SCRYPT_N = 2 ** 20;

const kdf = z.discriminatedUnion('kdf', [
  z.object({
    kdf: z.literal('scrypt'),
    kdfparams: z.object({
      dklen: z.literal(32),
      n: z
        .int()
        .min(2)
        .max(MAX_SCRYPT_N)
        .refine((n) => (n & (n - 1)) === 0, 'a power of two'),
      r: z.int().min(1).max(64),
      p: z.int().min(1).max(64),
      salt: anyHex,
    }),
  }),
  z.object({
    kdf: z.literal('pbkdf2'),
    kdfparams: z.object({
      dklen: z.literal(32),
      c: z.int().min(1).max(10_000_000),
      prf: z.literal('hmac-sha256'),
      salt: anyHex,
    }),
  }),
]);

const keystoreSchema = z.object({
  version: z.literal(3),
  address: hex(20).optional(),
  crypto: z.intersection(
    z.object({
      cipher: z.literal('aes-128-ctr'),
      cipherparams: z.object({ iv: hex(16) }),
      ciphertext: hex(32),
      mac: hex(32),
    }),
    kdf,
  ),
});

/** The address of a private key; throws INVALID_ARGUMENT with `problem` if it is none. */
export function addressOf(privateKey: string, problem: string): string {
  try {
    return computeAddress(privateKey);
  } catch {
    throw new EipError('INVALID_ARGUMENT', problem);
  }
}

export interface DecryptedKey {
  readonly address: string;
  readonly privateKey: string;
}

const bytes = (text: string) => Buffer.from(getBytes(text.startsWith('0x') ? text : `0x${text}`));

/**
 * The key in `json`. Throws INVALID_ARGUMENT naming what is wrong with the file, or saying that the
 * password is wrong (the MAC does not match), never echoing either.
 */
export async function decryptKeystore(json: string, password: string): Promise<DecryptedKey> {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new EipError('INVALID_ARGUMENT', 'not JSON');
  }
  // geth writes "Crypto", ethers "crypto".
  if (raw && typeof raw === 'object' && 'Crypto' in raw && !('crypto' in raw)) {
    const { Crypto, ...rest } = raw as Record<string, unknown>;
    raw = { ...rest, crypto: Crypto };
  }
  const parsed = keystoreSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new EipError(
      'INVALID_ARGUMENT',
      `not a v3 keystore: ${issue?.path.join('.') || '(top)'}: ${issue?.message}`,
    );
  }
  const { crypto, address } = parsed.data;
  const secret = Buffer.from(password.normalize('NFKC'), 'utf8');
  const salt = bytes(crypto.kdfparams.salt);
  const derived = await new Promise<Buffer>((resolve, reject) => {
    const done = (error: Error | null, key: Buffer) => (error ? reject(error) : resolve(key));
    if (crypto.kdf === 'pbkdf2') {
      pbkdf2(secret, salt, crypto.kdfparams.c, 32, 'sha256', done);
      return;
    }
    const { n, r, p } = crypto.kdfparams;
    // scrypt needs 128 * N * r bytes; Node refuses above 32 MB unless told (ethers uses 128 MB).
    scrypt(secret, salt, 32, { N: n, r, p, maxmem: 256 * n * r + 2 ** 20 }, done);
  });
  const ciphertext = bytes(crypto.ciphertext);
  const mac = bytes(keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext])));
  if (!timingSafeEqual(mac, bytes(crypto.mac))) {
    throw new EipError('INVALID_ARGUMENT', 'wrong password (the keystore MAC does not match)');
  }
  const decipher = createDecipheriv(
    'aes-128-ctr',
    derived.subarray(0, 16),
    bytes(crypto.cipherparams.iv),
  );
  const privateKey = hexlify(Buffer.concat([decipher.update(ciphertext), decipher.final()]));
  const derivedAddress = addressOf(privateKey, 'the keystore holds no valid private key');
  if (address !== undefined && bytes(address).compare(bytes(derivedAddress)) !== 0) {
    throw new EipError('INVALID_ARGUMENT', 'the keystore address does not match its key');
  }
  return { address: derivedAddress, privateKey };
}
