/**
 * The agent's own keystore decryption against ethers': the same key from a keystore ethers wrote
 * (scrypt) and from the Web3 Secret Storage PBKDF2 form, and a named refusal for every way a file
 * or a password can be wrong, with no secret in the message.
 */
import { computeAddress, decryptKeystoreJson, encryptKeystoreJson } from 'ethers';
import { describe, expect, it } from 'vitest';
import { decryptKeystore } from '../../edge/keystore.js';

const key = `0x${'7a'.repeat(32)}`;
const password = 'correct horse battery';
// Small scrypt parameters keep the test fast; the format is the same at ethers' N = 2^17.
const scryptJson = await encryptKeystoreJson(
  { address: computeAddress(key), privateKey: key },
  password,
  { scrypt: { N: 1024 } },
);

interface Keystore {
  version: number;
  address?: string;
  crypto: { [field: string]: unknown; kdfparams: Record<string, unknown> };
}

/** The same key under PBKDF2, built by hand as geth's light mode writes it. */
async function pbkdf2Keystore(): Promise<string> {
  const { createCipheriv, pbkdf2Sync } = await import('node:crypto');
  const { keccak256 } = await import('ethers');
  const salt = Buffer.alloc(32, 1);
  const iv = Buffer.alloc(16, 2);
  const derived = pbkdf2Sync(Buffer.from(password), salt, 1000, 32, 'sha256');
  const cipher = createCipheriv('aes-128-ctr', derived.subarray(0, 16), iv);
  const ciphertext = Buffer.concat([
    cipher.update(Buffer.from(key.slice(2), 'hex')),
    cipher.final(),
  ]);
  const mac = keccak256(Buffer.concat([derived.subarray(16), ciphertext])).slice(2);
  return JSON.stringify({
    version: 3,
    id: '3198bc9c-6672-5ab3-d995-4942343ae5b6',
    Crypto: {
      cipher: 'aes-128-ctr',
      cipherparams: { iv: iv.toString('hex') },
      ciphertext: ciphertext.toString('hex'),
      kdf: 'pbkdf2',
      kdfparams: { c: 1000, dklen: 32, prf: 'hmac-sha256', salt: salt.toString('hex') },
      mac,
    },
  });
}

describe('decryptKeystore', () => {
  it('opens a keystore ethers wrote, to the key and address ethers finds', async () => {
    const ours = await decryptKeystore(scryptJson, password);
    const theirs = await decryptKeystoreJson(scryptJson, password);
    expect(ours).toEqual({ address: theirs.address, privateKey: theirs.privateKey });
    expect(ours.privateKey).toBe(key);
  });

  it('opens the PBKDF2 form, as ethers does', async () => {
    const json = await pbkdf2Keystore();
    const ours = await decryptKeystore(json, password);
    expect(ours.privateKey).toBe(key);
    expect(ours.address).toBe((await decryptKeystoreJson(json, password)).address);
  });

  it('says the password is wrong without repeating it', async () => {
    const failure = decryptKeystore(scryptJson, 'not the password');
    await expect(failure).rejects.toThrow(/^wrong password \(the keystore MAC does not match\)$/);
    await expect(failure).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it.each<[string, (k: Keystore) => unknown, RegExp]>([
    ['not JSON', () => '{', /^not JSON$/],
    ['version 1', (k) => ({ ...k, version: 1 }), /^not a v3 keystore: version:/],
    [
      'another cipher',
      (k) => ({ ...k, crypto: { ...k.crypto, cipher: 'aes-256-cbc' } }),
      /crypto\.cipher/,
    ],
    [
      'a short iv',
      (k) => ({ ...k, crypto: { ...k.crypto, cipherparams: { iv: 'abcd' } } }),
      /crypto\.cipherparams\.iv: 16 bytes of hex/,
    ],
    [
      'an scrypt N that would take gigabytes',
      (k) => ({ ...k, crypto: { ...k.crypto, kdfparams: { ...k.crypto.kdfparams, n: 2 ** 22 } } }),
      /crypto\.kdfparams\.n/,
    ],
    ['an unknown kdf', (k) => ({ ...k, crypto: { ...k.crypto, kdf: 'argon2' } }), /crypto\.kdf/],
    [
      'an address that is not its key’s',
      (k) => ({ ...k, address: '11'.repeat(20) }),
      /address does not match its key/,
    ],
  ])('refuses %s, naming where', async (_, change, why) => {
    // ethers writes "Crypto" as geth does; the lower-case form is read too, so edit that one.
    const { Crypto, ...rest } = JSON.parse(scryptJson) as Omit<Keystore, 'crypto'> & {
      Crypto: Keystore['crypto'];
    };
    const original: Keystore = { ...rest, crypto: Crypto };
    const changed = change(original);
    const json = typeof changed === 'string' ? changed : JSON.stringify(changed);
    await expect(decryptKeystore(json, password)).rejects.toThrow(why);
  });
});
