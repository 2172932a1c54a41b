import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../simulators/cli/program.js';
import { capture } from '../support/capture.js';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '../../dist/simulators/cli/main.js');
const TABLE1 = ['--seller', 'ip=80,rp=20,dl=20,cr=2', '--buyer', 'ip=20,rp=80,dl=20,cr=0.5'];
const scratch = mkdtempSync(join(tmpdir(), 'eip-sim-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function sim(...argv: string[]) {
  return capture((io) => main(argv, io));
}

describe('eip-sim case-study', () => {
  it('--json reproduces section 5: 100 m3 at 35 tokens, price at step 11, quantity at step 12', async () => {
    const { code, stdout, stderr } = await sim('case-study', '--json');
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(stdout);
    expect(report.agreement).toMatchObject({
      round: 12,
      price: 35,
      quantity: 100,
      price_round: 11,
      quantity_round: 12,
      escrow: 3500,
    });
    expect(report.gains.seller).toMatchObject({
      name: 'Prosumer 0',
      traded: 100,
      tokens: 3500,
      provider_tokens: 2000,
      gain: 1500,
      gain_per_unit: 15,
      surplus_left: 0,
    });
    expect(report.gains.buyer).toMatchObject({
      name: 'Prosumer 1',
      traded: 100,
      tokens: 3500,
      provider_tokens: 8000,
      gain: 4500,
      gain_per_unit: 45,
      deficit_left: 50,
      steps_to_deadline: 338,
    });
    expect(report.utility).toMatchObject({
      id: 'biogas',
      unit: 'm3',
      provider_sells_at: 80,
      provider_buys_at: 20,
    });
    expect(report.agents.seller.psi.price).toEqual({
      ip: 80,
      rp: 20,
      dl: 20,
      cr: 2,
      shape: 'conceder',
    });
    expect(report.agents.buyer.psi.price).toEqual({
      ip: 20,
      rp: 80,
      dl: 20,
      cr: 0.5,
      shape: 'boulware',
    });
    expect(report.transcript).toHaveLength(26);
    expect(report.transcript[0]).toEqual({
      round: 0,
      by: 'seller',
      kind: 'offer',
      price: 80,
      quantity: 100,
      accepted: [],
    });
    expect(report.transcript.at(-1)).toEqual({
      round: 12,
      by: 'buyer',
      kind: 'accept',
      price: 35,
      quantity: 100,
      accepted: ['quantity'],
    });
  });

  it('prints a readable report', async () => {
    const { code, stdout } = await sim('case-study');
    expect(code).toBe(0);
    expect(stdout).toContain(
      'Agreement at step 12: 100 m3 at 35 tokens/m3 (price settled at step 11, quantity at step 12).',
    );
    expect(stdout).toContain('Escrow: 3500 tokens');
    expect(stdout).toMatch(/Prosumer 0 +100 m3 +\+3500 +\+1500 +\+15\/m3/);
    expect(stdout).toMatch(/Prosumer 1 +100 m3 +-3500 +\+4500 +\+45\/m3 +50 m3/);
    expect(stdout).toContain(
      'Prosumer 1 still lacks 50 m3, 338 steps before its deadline (step 350)',
    );
    expect(stdout).toContain('Prosumer 0 accepts price 35');
  });

  it('--plot writes Fig. 6 (a) and (b) as SVG', async () => {
    const file = join(scratch, 'fig6.svg');
    const { code, stdout } = await sim('case-study', '--plot', file);
    expect(code).toBe(0);
    expect(stdout).toContain(`Plot written to ${file}`);
    const svg = readFileSync(file, 'utf8');
    expect(svg).toMatch(/^<\?xml[^>]*>\s*<svg /);
    expect(svg).toContain('(a) Offers on price');
    expect(svg).toContain('(b) Offers on quantity');
    expect(svg).toContain('agreed 35 at step 11');
    expect(svg).toContain('agreed 100 at step 12');
    expect(svg.match(/<polyline /g)).toHaveLength(4);
    expect(readdirSync(scratch).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('eip-sim negotiate', () => {
  it('Table 1 with the default quantities gives the case-study agreement', async () => {
    const { code, stdout } = await sim('negotiate', ...TABLE1, '--json');
    expect(code).toBe(0);
    expect(JSON.parse(stdout).agreement).toMatchObject({ round: 12, price: 35, quantity: 100 });
  });

  it('prints agreement null when the reserves never meet', async () => {
    const { code, stdout } = await sim(
      'negotiate',
      '--seller',
      'ip=80,rp=60,dl=10,cr=1',
      '--buyer',
      'ip=20,rp=40,dl=10,cr=1',
      '--json',
    );
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.agreement).toBeNull();
    expect(report.outcome).toMatchObject({ kind: 'no-agreement', reason: 'deadline', round: 11 });
    expect(report.gains.seller.gain).toBe(0);
    const text = await sim(
      'negotiate',
      '--seller',
      'ip=80,rp=60,dl=10,cr=1',
      '--buyer',
      'ip=20,rp=40,dl=10,cr=1',
    );
    expect(text.stdout).toContain(
      'No agreement. Seller passed its deadline with an issue open and broke off at step 11.',
    );
  });

  it('takes quantity psi, amounts, the utility, tick, opener and deadline behaviour', async () => {
    const { code, stdout } = await sim(
      'negotiate',
      '--seller',
      'ip=20,rp=10,dl=10,cr=1',
      '--buyer',
      'ip=5,rp=15,dl=10,cr=1',
      '--seller-qty',
      'ip=30,rp=50,dl=10,cr=1',
      '--buyer-qty',
      'ip=80,rp=20,dl=10,cr=1',
      '--surplus',
      '60',
      '--need',
      '90',
      '--utility',
      'electricity',
      '--price-tick',
      '0.5',
      '--first',
      'buyer',
      '--after-deadline',
      'stand',
      '--max-rounds',
      '50',
      '--json',
    );
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.utility).toMatchObject({ id: 'electricity', unit: 'kWh', price_tick: 0.5 });
    expect(report.opener).toBe('buyer');
    expect(report.transcript[0].by).toBe('buyer');
    expect(report.agents.seller).toMatchObject({
      preferences: { quantity: 60 },
      after_deadline: 'stand',
    });
    expect(report.agreement.price % 0.5).toBe(0);
    expect(report.gains.buyer.deficit_left).toBe(90 - report.agreement.quantity);
  });

  it.each([
    [['--seller', 'ip=80,rp=20,dl=20,cr=0'], '--seller: cr must be a finite number > 0 (got 0)'],
    [['--seller', 'ip=80,rp=20,dl=-1,cr=2'], '--seller: dl must be a finite number > 0 (got -1)'],
    [['--seller', 'ip=80,rp=20,dl=0,cr=2'], '--seller: dl must be a finite number > 0 (got 0)'],
    [
      ['--buyer', 'ip=NaN,rp=80,dl=20,cr=1'],
      '--buyer: ip must be a decimal number like 20 or 0.5 (got "NaN")',
    ],
    [
      ['--buyer', 'ip=20,rp=80,dl=1e999,cr=1'],
      '--buyer: dl must be a decimal number like 20 or 0.5 (got "1e999")',
    ],
    [['--seller', 'ip=80,rp=20,dl=20'], '--seller: missing cr (expected ip=..,rp=..,dl=..,cr=..)'],
    [
      ['--seller', 'ip=80,rp=20,dl=20,cr=2,x=1'],
      '--seller: unknown key "x" (allowed: ip, rp, dl, cr)',
    ],
    [['--seller', 'ip=80,ip=70,rp=20,dl=20,cr=2'], '--seller: ip is given twice'],
    [
      ['--seller', 'ip=80;rp=20'],
      '--seller: ip must be a decimal number like 20 or 0.5 (got "80;rp=20")',
    ],
    [
      ['--seller', 'ip=80,rp=20,dl=20,cr=2e3'],
      '--seller: cr must be a decimal number like 20 or 0.5 (got "2e3")',
    ],
    [
      ['--seller', 'ip=2000000000000,rp=20,dl=20,cr=2'],
      '--seller: ip must be a finite number between -1e12 and 1e12',
    ],
    [
      ['--seller', '80,20,20,2'],
      '--seller: "80" is not key=value (expected ip=..,rp=..,dl=..,cr=..)',
    ],
    [
      ['--seller', 'ip=20,rp=80,dl=20,cr=2'],
      '--seller: ip (20) must be >= rp (80): a seller concedes down from ip to rp',
    ],
    [
      ['--buyer', 'ip=20.5,rp=80,dl=20,cr=1'],
      '--buyer: ip must be a multiple of the price tick 1 (got 20.5)',
    ],
    [
      ['--seller-qty', 'ip=0,rp=-5,dl=2,cr=1'],
      '--seller-qty: ip or rp must be > 0: the larger is the most the seller trades',
    ],
    [['--buyer-qty', 'ip=90,rp=-5,dl=2,cr=1'], '--buyer-qty: rp must be >= 0 (got -5)'],
    [
      ['--seller-qty', 'ip=50,rp=100,dl=20,cr=1', '--surplus', '80'],
      '--seller-qty: ip and rp must not exceed the surplus (80)',
    ],
    [['--surplus', '-3'], '--surplus must be > 0 (got "-3")'],
    [['--need', '1.0001'], '--need has more than 3 decimals'],
    [['--max-rounds', '0'], '--max-rounds must be a whole number from 1 to 100000 (got "0")'],
    [
      ['--max-rounds', '2000000'],
      '--max-rounds must be a whole number from 1 to 100000 (got "2000000")',
    ],
    [['--surplus', '99999999999999999999'], '--surplus must be at most 9007199254740 in size'],
    [
      ['--utility', 'gas'],
      "option '--utility <id>' argument 'gas' is invalid. Allowed choices are biogas, electricity, heat",
    ],
    [['--first', 'nobody'], "option '--first <role>' argument 'nobody' is invalid"],
    [['--bogus'], "unknown option '--bogus'"],
    [['--plot', 'fig.png'], '--plot: the file must end in .svg (got "fig.png")'],
  ])('%j -> exit 2 and one line: %s', async (override, message) => {
    const argv = [...TABLE1];
    for (let i = 0; i < override.length; i++) {
      const flag = override[i] ?? '';
      const at = argv.indexOf(flag);
      const value = override[i + 1];
      const takesValue = value !== undefined && !value.startsWith('--');
      if (at >= 0 && takesValue) argv[at + 1] = value;
      else argv.push(...(takesValue ? [flag, value] : [flag]));
      if (takesValue) i++;
    }
    const { code, stdout, stderr } = await sim('negotiate', ...argv);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.endsWith('\n')).toBe(true);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^eip-sim: /);
    expect(stderr).toContain(message);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('a required flag that is missing is named', async () => {
    const { code, stderr } = await sim('negotiate', '--buyer', 'ip=20,rp=80,dl=20,cr=0.5');
    expect(code).toBe(2);
    expect(stderr).toBe(
      "eip-sim: required option '--seller <psi>' not specified (see eip-sim --help)\n",
    );
  });

  it('an unwritable plot path fails with exit 1, writes nothing and prints no report', async () => {
    const { code, stdout, stderr } = await sim(
      'case-study',
      '--plot',
      join(scratch, 'missing-dir', 'fig.svg'),
    );
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^eip-sim: --plot: cannot write .*missing-dir\/fig\.svg: ENOENT/);
    expect(stderr).not.toContain('.tmp');
    expect(existsSync(join(scratch, 'missing-dir'))).toBe(false);
  });

  it('--help exits 0 and lists the commands and flags', async () => {
    const root = await sim('--help');
    expect(root.code).toBe(0);
    expect(root.stdout).toContain('case-study');
    expect(root.stdout).toContain('negotiate');
    const sub = await sim('negotiate', '--help');
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('--seller-qty <psi>');
  });

  it('no command shows the usage on stderr and exits 2', async () => {
    const { code, stdout, stderr } = await sim();
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    expect(stderr).toMatch(/^Usage: eip-sim /);
    expect(stderr).toContain('negotiate');
    expect(stderr).not.toContain('outputHelp');
  });

  it('an unknown command exits 2', async () => {
    const { code, stderr } = await sim('frobnicate');
    expect(code).toBe(2);
    expect(stderr).toBe("eip-sim: unknown command 'frobnicate' (see eip-sim --help)\n");
  });
});

describe('the built binary', () => {
  it('runs the case study from dist/ as an executable with a shebang', async () => {
    expect(readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(statSync(BIN).mode & 0o111).toBe(0o111);
    const { stdout } = await run(process.execPath, [BIN, 'case-study', '--json']);
    expect(JSON.parse(stdout).agreement).toEqual(
      expect.objectContaining({ round: 12, price: 35, quantity: 100 }),
    );
  });

  it('runs as the README says: npx eip-sim case-study', async () => {
    const { stdout } = await run('npx', ['--no-install', 'eip-sim', 'case-study'], {
      cwd: join(import.meta.dirname, '../..'),
    });
    expect(stdout).toContain('Agreement at step 12: 100 m3 at 35 tokens/m3');
    // npx resolves the package before it runs it: seconds more on a busy 2-core machine.
  }, 60_000);

  it('exits 2 with one line and no stack trace on bad input', async () => {
    const failure = await run(process.execPath, [
      BIN,
      'negotiate',
      '--seller',
      'ip=80,rp=20,dl=20,cr=-1',
      '--buyer',
      'ip=20,rp=80,dl=20,cr=0.5',
    ]).catch((e) => e);
    expect(failure.code).toBe(2);
    expect(failure.stderr).toBe('eip-sim: --seller: cr must be a finite number > 0 (got -1)\n');
  });
});

describe('eip-sim meter --curve', () => {
  it('names the bad point and exits 2 before serving anything', async () => {
    const { code, stdout, stderr } = await sim(
      'meter',
      '--profile',
      'suto-s430',
      '--tcp',
      '0',
      '--curve',
      '06:00=0,25:00=5',
    );
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    expect(stderr).toMatch(/^eip-sim: --curve: point 2 "25:00=5" 25:00 is not a time of day/);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('is in the command help, with the rate it drives per utility', async () => {
    const { code, stdout } = await sim('meter', '--help');
    expect(code).toBe(0);
    const help = stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(/--curve <spec>/);
    expect(help).toMatch(/active power in W .* gas flow in m3\/h .* thermal power in kW/);
  });
});
