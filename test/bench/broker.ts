/**
 * The park broker's login check: a first login (scrypt, N = 2^14) against one the broker has
 * already verified (a keyed digest), in the same run. What 1,000 agents reconnecting after a
 * broker restart cost depends on which of the two they meet.
 */
import { textTable } from '../../core/text-table.js';
import { hashPassword, parseCredentials } from '../../gateway/broker/credentials.js';

const USERS = 20;
const REPEATS = 2_000;

export async function brokerTable(): Promise<string> {
  const names = Array.from({ length: USERS }, (_, i) => `plant-${i}`);
  const hashes = await Promise.all(names.map((name) => hashPassword(`${name}-secret`)));
  const credentials = parseCredentials(
    `clients:\n${names.map((name, i) => `  ${name}: { role: prosumer, password: "${hashes[i]}" }`).join('\n')}\n`,
    'bench.yaml',
  );
  const login = (name: string) => credentials.check(name, Buffer.from(`${name}-secret`));
  let started = performance.now();
  for (const name of names) if (!(await login(name))) throw new Error(`${name} refused`);
  const firstMs = (performance.now() - started) / USERS;
  started = performance.now();
  for (let i = 0; i < REPEATS; i++) await login(names[i % USERS] as string);
  const againMs = (performance.now() - started) / REPEATS;
  return textTable(
    ['login check', 'per login', 'logins/s', 'vs first login'],
    [
      [
        `first login of a user (scrypt), ${USERS} users`,
        `${firstMs.toFixed(1)} ms`,
        (1000 / firstMs).toFixed(0),
        '1x',
      ],
      [
        `the same users again (remembered digest), ${REPEATS} logins`,
        `${(againMs * 1000).toFixed(1)} us`,
        Math.round(1000 / againMs).toLocaleString('en-US'),
        `${(firstMs / againMs).toFixed(0)}x faster`,
      ],
    ],
    ['left', 'right', 'right', 'right'],
  );
}
