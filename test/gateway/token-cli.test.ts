/**
 * `eip-gateway token` as an operator runs it: the built binary prints a token on stdout and the
 * entry for auth.tokens on stderr; the entry, pasted into a config, makes the gateway take that
 * token as the plant (or operator) it names. Bad usage is one line and exit code 2.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Wallet } from 'ethers';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { apiTokensSchema, TokenBook } from '../../gateway/auth/tokens.js';
import { ParkDirectory } from '../../gateway/park.js';

const BIN = join(import.meta.dirname, '../../dist/gateway/cli/main.js');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function token(...args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(BIN, ['token', ...args], {
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

/** The entry the command prints on stderr, as it would sit in the config's auth.tokens. */
function entryOf(stderr: string) {
  const line = stderr.split('\n').find((text) => text.startsWith('    '));
  return apiTokensSchema.parse(parse(line ?? ''));
}

const directory = new ParkDirectory({
  'biogas-plant': { address: Wallet.createRandom().address, meters: {} },
});

describe('eip-gateway token', () => {
  it("prints a new token, and the entry under which the gateway takes it as the plant's", async () => {
    const made = await token('--name', 'node-red-biogas', '--plant', 'biogas-plant');
    expect(made.code).toBe(0);
    expect(made.stdout).toMatch(/^eipt_[\w-]{43}\n$/);
    expect(made.stderr).toMatch(
      /^Add this entry under auth\.tokens in the gateway config, then restart the gateway:\n {4}node-red-biogas: \{ plant: biogas-plant, hash: "sha256:[0-9a-f]{64}" \}\nThe token \(on stdout\) is shown only now/,
    );
    const entries = entryOf(made.stderr);
    const book = TokenBook.open(entries, directory, Date.now);
    expect(book.callerOf(`Bearer ${made.stdout.trim()}`)).toEqual({
      who: 'node-red-biogas',
      principal: {
        role: 'plant',
        plant: 'biogas-plant',
        address: directory.addressOf('biogas-plant'),
      },
      expiresAt: null,
    });
    // The config holds the hash only.
    expect(made.stderr).not.toContain(made.stdout.trim());

    const again = await token('--name', 'node-red-biogas', '--plant', 'biogas-plant');
    expect(again.stdout).not.toBe(made.stdout);
    expect(() => book.callerOf(`Bearer ${again.stdout.trim()}`)).toThrow('not known');
  });

  it("makes an operator's token, with an expiry when asked", async () => {
    const made = await token('--name', 'report', '--operator', '--expires', '2099-06-30');
    expect(made.code).toBe(0);
    expect(entryOf(made.stderr)).toEqual({
      report: {
        role: 'operator',
        hash: expect.stringMatching(/^sha256:/),
        expires: Date.UTC(2099, 5, 30),
      },
    });
  });

  it.each([
    [['--operator'], "required option '--name <name>' not specified (see eip-gateway --help)"],
    [['--name', 'a'], 'give --operator or --plant ID, one of them'],
    [['--name', 'a', '--operator', '--plant', 'b'], 'give --operator or --plant ID, one of them'],
    [
      ['--name', 'Node RED', '--operator'],
      '--name: "Node RED" must be 1-63 of a-z, 0-9, "-", "_", starting with a letter or digit',
    ],
    [
      ['--name', 'a', '--plant', 'Biogas!'],
      '--plant: "Biogas!" must be 1-63 of a-z, 0-9, "-", "_", starting with a letter or digit',
    ],
    [
      ['--name', 'a', '--operator', '--expires', 'next week'],
      '--expires: "next week" must be an ISO 8601 date (2027-01-01) or date-time with zone (2027-01-01T08:00:00Z)',
    ],
    [
      ['--name', 'a', '--operator', '--expires', '2020-01-01'],
      '--expires: "2020-01-01" is already past',
    ],
  ])('refuses %j in one line, exit code 2, with no token made', async (args, message) => {
    expect(await token(...args)).toEqual({
      code: 2,
      stdout: '',
      stderr: `eip-gateway: ${message}\n`,
    });
  });
});
