/**
 * The prosumer's Ethereum key, which signs its offers and agreements. It comes from an encrypted
 * keystore (v3 JSON, as geth and ethers write it) whose password is in $EIP_EDGE_KEYSTORE_PASSWORD
 * or in the systemd credential `keystore-password`, or, for containers and tests, in plain form
 * from $EIP_EDGE_PRIVATE_KEY. Neither the key nor the password ever appears in a message or log:
 * errors name the file and the variable, not their contents.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EipError } from '../core/errors.js';
import { addressOf, type DecryptedKey, decryptKeystore } from './keystore.js';

export const PRIVATE_KEY_ENV = 'EIP_EDGE_PRIVATE_KEY';
/** The metering key's variable, for containers and tests (see meter_identity in the config). */
export const METER_KEY_ENV = 'EIP_EDGE_METER_PRIVATE_KEY';
export const PASSWORD_ENV = 'EIP_EDGE_KEYSTORE_PASSWORD';
/** The name of the systemd credential (LoadCredential=keystore-password:FILE). */
export const PASSWORD_CREDENTIAL = 'keystore-password';

type Env = Readonly<Record<string, string | undefined>>;

/** The keystore password from the environment or the systemd credentials directory. */
export function keystorePassword(env: Env = process.env): string | undefined {
  const fromEnv = env[PASSWORD_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const dir = env.CREDENTIALS_DIRECTORY;
  if (!dir) return undefined;
  try {
    // A credential file usually ends with a newline the password does not contain.
    return readFileSync(join(dir, PASSWORD_CREDENTIAL), 'utf8').replace(/\r?\n$/, '');
  } catch {
    return undefined;
  }
}

export interface IdentitySource {
  /** The keystore path from the config, relative to `baseDir`. */
  readonly keystore?: string | undefined;
  readonly baseDir: string;
  readonly env?: Env;
  /** The variable a plain key comes from without a keystore. */
  readonly keyEnv?: string;
}

export async function loadIdentity(source: IdentitySource): Promise<DecryptedKey> {
  const env = source.env ?? process.env;
  if (source.keystore !== undefined) {
    const file = resolve(source.baseDir, source.keystore);
    let json: string;
    try {
      json = readFileSync(file, 'utf8');
    } catch (error) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `cannot read keystore ${file}: ${(error as Error).message}`,
      );
    }
    const password = keystorePassword(env);
    if (password === undefined) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `keystore ${file} needs its password in $${PASSWORD_ENV} or the systemd credential "${PASSWORD_CREDENTIAL}"`,
      );
    }
    try {
      return await decryptKeystore(json, password);
    } catch (error) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `cannot decrypt keystore ${file}: ${(error as Error).message}`,
      );
    }
  }
  const keyEnv = source.keyEnv ?? PRIVATE_KEY_ENV;
  const key = env[keyEnv];
  if (key !== undefined && key !== '') {
    const privateKey = key.startsWith('0x') ? key : `0x${key}`;
    if (!/^0x[0-9a-fA-F]{64}$/.test(privateKey))
      throw new EipError('INVALID_ARGUMENT', `$${keyEnv} is not a 32-byte hex private key`);
    return {
      address: addressOf(privateKey, `$${keyEnv} is not a valid private key`),
      privateKey,
    };
  }
  const section = keyEnv === PRIVATE_KEY_ENV ? 'identity' : 'meter_identity';
  throw new EipError(
    'INVALID_ARGUMENT',
    `no key: set ${section}.keystore in the config (see eip-edge keystore new) or $${keyEnv}`,
  );
}

/** Makes a new key, writes it encrypted to `file` (owner-only), and returns its address. */
export async function createKeystore(
  file: string,
  password: string,
  options: { force?: boolean } = {},
): Promise<string> {
  if (password.length < 8) {
    throw new EipError('INVALID_ARGUMENT', 'the keystore password must have at least 8 characters');
  }
  // Only this command needs ethers' Wallet; the agent itself never loads it (see keystore.ts).
  const { Wallet } = await import('ethers/wallet');
  const wallet = Wallet.createRandom();
  const json = await wallet.encrypt(password);
  try {
    writeFileSync(file, `${json}\n`, { mode: 0o600, flag: options.force ? 'w' : 'wx' });
  } catch (error) {
    const exists = (error as NodeJS.ErrnoException).code === 'EEXIST';
    throw new EipError(
      exists ? 'INVALID_ARGUMENT' : 'IO_ERROR',
      exists
        ? `${file} exists; a keystore is never overwritten unless --force is given`
        : `cannot write ${file}: ${(error as Error).message}`,
    );
  }
  return wallet.address;
}
