/**
 * `eip-sim train` and `eip-sim evaluate` as a user runs them: progress on stderr, the policy file
 * written whole, the comparison on stdout as tables or JSON, the HTML report, and every bad input
 * refused with one line (or every problem of a scenario, by line) and exit 2.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicyFile } from '../../core/policy/learned.js';
import { main } from '../../simulators/cli/program.js';
import { capture } from '../support/capture.js';
import { writeTinyPark } from '../support/tiny-park.js';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '../../dist/simulators/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'eip-market-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sim = (...argv: string[]) => capture((io) => main(argv, io));

let park: string;
let policy: string;

beforeAll(async () => {
  park = writeTinyPark(dir);
  policy = join(dir, 'policy.json');
  const trained = await sim('train', '--scenario', park, '--out', policy, '--episodes', '30');
  expect(trained.code, trained.stderr).toBe(0);
}, 60_000);

describe('eip-sim train', () => {
  it('shows its progress, keeps the best validation, and writes a policy the edge can read', async () => {
    const { code, stdout, stderr } = await sim(
      'train',
      '--scenario',
      park,
      '--out',
      join(dir, 'again.json'),
      '--episodes',
      '30',
      '--json',
    );
    expect(code).toBe(0);
    expect(stderr).toMatch(
      /^eip-sim: learning in Tiny park \(6 prosumers, 240 steps a day\) for 30 days$/m,
    );
    expect(stderr).toMatch(/^episode {2}1\/30 {2}epsilon 0\.30 {2}day's gain [\d,]+ tokens/m);
    expect(stderr).toMatch(/^episode 30\/30 .* validation [\d,-]+ \(worst prosumer [\d,-]+\)/m);
    const summary = JSON.parse(stdout);
    expect(summary).toMatchObject({ out: join(dir, 'again.json'), episodes: 30 });
    expect(summary.kept.episode).toBeGreaterThan(0);
    expect(summary.kept.validation_gain).toBeGreaterThan(0);
    expect(summary.kept.worst_prosumer).toBeGreaterThanOrEqual(0);
    // The same seed learns the same policy.
    const file = parsePolicyFile(readFileSync(join(dir, 'again.json'), 'utf8'), 'again.json');
    expect(file.values).toEqual(
      parsePolicyFile(readFileSync(policy, 'utf8'), 'policy.json').values,
    );
    expect(file.trained).toMatchObject({ scenario: 'Tiny park', episodes: 30, seed: 1 });
  });

  it('refuses bad flags and a scenario with problems, each with one clear message and exit 2', async () => {
    const episodes = await sim('train', '--scenario', park, '--out', policy, '--episodes', '0');
    expect(episodes).toMatchObject({ code: 2, stdout: '' });
    expect(episodes.stderr).toMatch(
      /--episodes must be a whole number from 1 to 100000 \(got "0"\)/,
    );
    const missing = await sim('train', '--scenario', join(dir, 'none.yaml'), '--out', policy);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read scenario .*none\.yaml/);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'steps: 10\nprosumers:\n  - id: a\n    utilities:\n      biogas: { storage: { capacity: 5, level: 9, target: 1 }, colour: red }\n',
    );
    const invalid = await sim('train', '--scenario', bad, '--out', policy);
    expect(invalid.code).toBe(2);
    // Every problem, by line and path.
    expect(invalid.stderr).toMatch(
      /bad\.yaml:5: prosumers\.0\.utilities\.biogas: unknown key "colour"/,
    );
    expect(invalid.stderr).toMatch(/bad\.yaml:\d+: prosumers: needs at least two prosumers/);
  });

  it('writes the policy whole or not at all', async () => {
    const result = await sim(
      'train',
      '--scenario',
      park,
      '--out',
      join(dir, 'no', 'such', 'p.json'),
      '--episodes',
      '2',
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/--out: cannot write .*no\/such\/p\.json/);
    expect(existsSync(join(dir, 'no'))).toBe(false);
  });
});

describe('eip-sim evaluate', () => {
  it('compares every policy on the same held-out days, as JSON with the goals', async () => {
    const { code, stdout, stderr } = await sim(
      'evaluate',
      '--scenario',
      park,
      '--policy',
      policy,
      '--seeds',
      '3',
      '--json',
    );
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/^ {2}learned: 3 days in [\d.]+ s$/m);
    const result = JSON.parse(stdout);
    expect(result.seeds).toEqual([1_000_001, 1_000_002, 1_000_003]);
    expect(result.policies.map((p: { policy: string }) => p.policy)).toEqual([
      'provider only',
      'fixed psi',
      'random',
      'learned',
    ]);
    const [providerOnly, , , learned] = result.policies;
    expect(providerOnly.park).toMatchObject({ profitVsProvider: 0, agreements: 0 });
    expect(learned.park.profitVsProvider).toBeGreaterThan(0);
    expect(learned.park.agreementRate).toBeGreaterThan(0);
    expect(learned.park.quality.paretoDistance).toBeGreaterThanOrEqual(0);
    expect(learned.park.quality.nashProduct).toBeLessThanOrEqual(1);
    expect(learned.prosumers).toHaveLength(6);
    expect(result.goals).toEqual({
      beatsEveryBaseline: expect.any(Boolean),
      noProsumerWorseThanProviderAlone: learned.individuallyRational.daysWithLoss === 0,
    });
  });

  it('prints tables a person reads, and writes the HTML report with its plots', async () => {
    const report = join(dir, 'report');
    const { code, stdout, stderr } = await sim(
      'evaluate',
      '--scenario',
      park,
      '--policy',
      policy,
      '--seeds',
      '2',
      '--report',
      report,
    );
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^Tiny park: 6 prosumers, 2 days \(seeds 1000001 to 1000002\)/);
    expect(stdout).toMatch(/^learned +[\d,]+ +[\d,]+ +[\d.]+ %/m);
    expect(stdout).toMatch(/^digester-1 /m);
    expect(stdout).toMatch(/The learned policy beats every baseline on park profit: (yes|NO)\./);
    const html = readFileSync(join(report, 'index.html'), 'utf8');
    expect(stderr).toContain(`report written to ${join(report, 'index.html')}`);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<title>Tiny park: how good the market is</title>');
    // Three kinds of plot, each an SVG with its title, and its data in a table.
    expect(html).toContain('Profit against the provider alone, per prosumer and policy');
    expect(html).toContain('Biogas / natural gas: agreed prices per policy');
    expect(html).toContain(': offers over time steps');
    expect(html.match(/<svg /g)?.length).toBeGreaterThanOrEqual(4);
    expect(html.match(/<details>/g)?.length).toBe(html.match(/<svg /g)?.length);
    // Nothing runs, nothing is fetched from elsewhere.
    expect(html).not.toMatch(/<script|(?:src|href)="https?:/);
  });

  it('without --policy compares the baselines, and says the learned one is not among them', async () => {
    const { code, stdout } = await sim('evaluate', '--scenario', park, '--seeds', '1');
    expect(code).toBe(0);
    expect(stdout).toContain('No --policy: the learned policy is not among them.');
    expect(stdout).not.toMatch(/^learned /m);
  });

  it('refuses a policy file it cannot use, naming it', async () => {
    const other = join(dir, 'other.json');
    const file = JSON.parse(readFileSync(policy, 'utf8'));
    writeFileSync(other, JSON.stringify({ ...file, states: 'side2' }));
    const refused = await sim('evaluate', '--scenario', park, '--policy', other);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/other\.json: states: .*learned on another context/);
    const missing = await sim('evaluate', '--scenario', park, '--policy', join(dir, 'gone.json'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--policy: cannot read .*gone\.json/);
  });

  it('is an executable the build installs', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'evaluate', '--help']);
    expect(stdout).toContain('--report <dir>');
  });
});
