/** Broker credentials: scrypt hashes, the file format and its errors, and `eip-gateway passwd`. */
import { describe, expect, it } from 'vitest';
import {
  hashPassword,
  parseCredentials,
  verifyPassword,
} from '../../gateway/broker/credentials.js';
import { main } from '../../gateway/cli/program.js';
import { capture } from '../support/capture.js';

describe('broker credentials', () => {
  it('hash a password with a fresh salt and verify only that password', async () => {
    const [one, two] = await Promise.all([hashPassword('correct'), hashPassword('correct')]);
    expect(one).toMatch(/^scrypt:16384:8:1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    expect(one).not.toBe(two);
    expect(await verifyPassword(one, Buffer.from('correct'))).toBe(true);
    expect(await verifyPassword(one, Buffer.from('Correct'))).toBe(false);
    expect(await verifyPassword('scrypt:garbage', Buffer.from('correct'))).toBe(false);
  });

  it('map each login to its principal', async () => {
    const hash = await hashPassword('pw');
    const credentials = parseCredentials(
      `clients:\n  plant-a: { role: prosumer, password: "${hash}" }\n  a-chp: { role: meter, prosumer: plant-a, meter: chp, password: "${hash}" }\n  gw: { role: operator, password: "${hash}" }\n`,
      'c.yaml',
    );
    expect(credentials.size).toBe(3);
    expect(await credentials.check('plant-a', Buffer.from('pw'))).toEqual({
      role: 'prosumer',
      prosumer: 'plant-a',
    });
    expect(await credentials.check('a-chp', Buffer.from('pw'))).toEqual({
      role: 'meter',
      prosumer: 'plant-a',
      meter: 'chp',
    });
    expect(await credentials.check('gw', Buffer.from('pw'))).toEqual({
      role: 'operator',
      name: 'gw',
    });
    expect(await credentials.check('plant-a', Buffer.from('no'))).toBeNull();
    // After a good login is remembered, a wrong password is still refused and the right one
    // still accepted.
    expect(await credentials.check('plant-a', Buffer.from('pw'))).not.toBeNull();
    expect(await credentials.check('plant-a', Buffer.from('pw '))).toBeNull();
    expect(await credentials.check('plant-a', Buffer.from(''))).toBeNull();
    expect(await credentials.check('plant-a', Buffer.from('pw'))).not.toBeNull();
    expect(await credentials.check('a-chp', Buffer.from('no'))).toBeNull();
    expect(await credentials.check('nobody', Buffer.from('pw'))).toBeNull();
    expect(await credentials.check(undefined, undefined)).toBeNull();
  });

  it('refuse a file with a plain password or a bad entry, naming each path', () => {
    const text = `clients:
  plant-a: { role: prosumer, password: "hunter2" }
  Plant B: { role: prosumer, password: "x" }
  a-chp: { role: meter, password: "x" }
`;
    expect(() => parseCredentials(text, 'c.yaml')).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    let message = '';
    try {
      parseCredentials(text, 'c.yaml');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^c\.yaml: \d+ problem\(s\):/);
    expect(message).toMatch(
      /clients\.plant-a\.password: must be an scrypt hash from `eip-gateway passwd`, never the password/,
    );
    expect(message).toMatch(/clients\.Plant B/);
    expect(message).toMatch(/clients\.a-chp\.prosumer/);
    expect(message).not.toMatch(/hunter2/);
    expect(() => parseCredentials('clients: [', 'c.yaml')).toThrow(/^c\.yaml: not YAML/);
  });
});

describe('eip-gateway passwd', () => {
  const run = (env: NodeJS.ProcessEnv) => capture((io) => main(['passwd'], io, env));

  it('prints a hash the broker accepts for that password, and never the password', async () => {
    const { code, stdout, stderr } = await run({ EIP_BROKER_PASSWORD: 'a long enough secret' });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const hash = stdout.trim();
    expect(hash).not.toContain('secret');
    expect(await verifyPassword(hash, Buffer.from('a long enough secret'))).toBe(true);
    const credentials = parseCredentials(
      `clients:\n  plant-a: { role: prosumer, password: "${hash}" }\n`,
      'c.yaml',
    );
    expect(await credentials.check('plant-a', Buffer.from('a long enough secret'))).not.toBeNull();
  });

  it('wants the password in the environment, long enough', async () => {
    for (const env of [{}, { EIP_BROKER_PASSWORD: 'short' }]) {
      const { code, stderr } = await run(env);
      expect(code).toBe(2);
      expect(stderr).toBe(
        'eip-gateway: put the password (12 characters at least) in $EIP_BROKER_PASSWORD\n',
      );
    }
  });
});
