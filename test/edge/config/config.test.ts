/**
 * The config an installer writes: the example passes, every problem is listed with its line and
 * path and exit code 2, the JSON Schema for editors is the schema's own, and the identity comes
 * from a keystore `keystore new` wrote or from the environment, without leaking either.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { LearnedPolicy, QTable } from '../../../core/policy/learned.js';
import { milli } from '../../../core/units.js';
import { main } from '../../../edge/cli/program.js';
import { configJsonSchema } from '../../../edge/config/json-schema.js';
import { loadConfig } from '../../../edge/config/load.js';
import { loadIdentity } from '../../../edge/identity.js';
import { capture } from '../../support/capture.js';

const EXAMPLE = 'edge/config/example.yaml';
const dir = mkdtempSync(join(tmpdir(), 'eip-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (argv: string[]) => capture((io) => main(argv, io));

describe('edge config', () => {
  it('accepts the shipped example, with defaults filled in', async () => {
    const { config } = loadConfig(EXAMPLE);
    expect(config.prosumer).toBe('digester-plant');
    expect(config.outbox.max_mb).toBe(64);
    expect(config.negotiation.discovery_ms).toBe(2000);
    const { code, stdout } = await run(['check-config', EXAMPLE]);
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /OK: prosumer digester-plant, 5 meter\(s\), trading biogas, electricity/,
    );
  });

  it('lists every problem with its line and path, and exits 2', async () => {
    const bad = readFileSync(EXAMPLE, 'utf8')
      .replace('  url: mqtt', '  uri: mqtt')
      .replace('baud: 9600', 'baud: 9601')
      .replace(/unit: 1\n/, 'unit: 300\n');
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, bad);
    const { code, stderr } = await run(['check-config', file]);
    expect(code).toBe(2);
    expect(stderr).toContain('4 problem(s)');
    expect(stderr).toMatch(/bad\.yaml:\d+: mqtt\.url: is required/);
    expect(stderr).toMatch(/bad\.yaml:\d+: mqtt: unknown key "uri"/);
    expect(stderr).toMatch(/bad\.yaml:41: buses\.rs485\.baud: must be one of 1200, .* 115200/);
    expect(stderr).toMatch(/meters\.chp\.unit: Too big/);
  });

  it('checks references against the meters and their profiles', async () => {
    const bad = readFileSync(EXAMPLE, 'utf8')
      .replace('profile: eastron-sdm630', 'profile: sdm999')
      .replace('consumption: [boiler-gas.value]', 'consumption: [boiler.value, holder.level]')
      .replace('production: [chp.export_energy]', 'production: [mains.power_import]');
    const file = join(dir, 'refs.yaml');
    writeFileSync(file, bad);
    const { code, stderr } = await run(['check-config', file]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/meters\.chp\.profile: unknown meter profile "sdm999"/);
    expect(stderr).toMatch(/utilities\.biogas\.consumption\.0: no meter "boiler" in meters/);
    expect(stderr).toMatch(
      /utilities\.biogas\.consumption\.1: an MQTT meter has one quantity, "value"/,
    );
    expect(stderr).toMatch(
      /utilities\.electricity\.production\.0: mains\.power_import is in kW, which does not convert to kWh/,
    );
  });

  it('names a YAML syntax error and an unreadable file', async () => {
    const file = join(dir, 'syntax.yaml');
    writeFileSync(file, 'prosumer: [unclosed\n');
    expect((await run(['check-config', file])).stderr).toMatch(/syntax\.yaml:\d+: /);
    const missing = await run(['check-config', join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read config .*nope\.yaml/);
  });

  it('takes deadline_s per utility, in whole seconds and not shorter than a step', async () => {
    const example = readFileSync(EXAMPLE, 'utf8');
    const { config } = loadConfig(EXAMPLE);
    expect(config.utilities.biogas?.deadline_s).toBe(21_600);
    expect(config.utilities.electricity?.deadline_s).toBeUndefined();

    const bad = join(dir, 'deadline-bad.yaml');
    const tooShort = example.replace('  electricity:\n', '  electricity:\n    deadline_s: 60\n');
    writeFileSync(bad, tooShort.replace('deadline_s: 21600', 'deadline_s: 1.5'));
    const { code, stderr } = await run(['check-config', bad]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/deadline-bad\.yaml:\d+: utilities\.biogas\.deadline_s: .*expected int/);
    // The cross-check runs once the schema passes: then the too-short deadline is named.
    writeFileSync(bad, tooShort);
    expect((await run(['check-config', bad])).stderr).toMatch(
      /deadline-bad\.yaml:\d+: utilities\.electricity\.deadline_s: must be at least step_s \(900\)/,
    );
  });

  describe('a learned policy', () => {
    const file = new QTable().toFile(milli(1000), { scenario: 'test' });
    /** The example with biogas's rules replaced by a learned policy from `policyFile`. */
    const learned = (name: string, policyFile: string) => {
      const text = readFileSync(EXAMPLE, 'utf8').replace(
        /policy:\n {6}type: rules\n[\s\S]*?provider_after_failures: 2\n/,
        `policy: { type: learned, file: ${policyFile} }\n`,
      );
      const config = join(dir, `${name}.yaml`);
      writeFileSync(config, text);
      return config;
    };

    it('is read from its file, relative to the config, when the config is loaded', async () => {
      mkdirSync(join(dir, 'policies'), { recursive: true });
      writeFileSync(join(dir, 'policies', 'biogas.json'), JSON.stringify(file));
      const config = learned('learned', 'policies/biogas.json');
      const loaded = loadConfig(config);
      expect(loaded.config.utilities.biogas?.policy).toEqual({
        type: 'learned',
        file: 'policies/biogas.json',
      });
      expect(loaded.policies.biogas).toBeInstanceOf(LearnedPolicy);
      // Electricity keeps its rules, which the agent builds from the config.
      expect(loaded.policies.electricity).toBeUndefined();
      expect((await run(['check-config', config])).code).toBe(0);
    });

    it('refuses a missing file, naming it, in check-config and run alike', async () => {
      const config = learned('absent', 'absent.json');
      const expected =
        /absent\.yaml:\d+: utilities\.biogas\.policy\.file: cannot read policy file \/.*\/absent\.json: ENOENT/;
      const checked = await run(['check-config', config]);
      expect(checked.code).toBe(2);
      expect(checked.stderr).toMatch(expected);
      const ran = await run(['run', '--config', config]);
      expect(ran.code).toBe(2);
      expect(ran.stderr).toMatch(expected);
    });

    it('refuses a file that is not JSON, naming it', async () => {
      writeFileSync(join(dir, 'yaml.json'), 'format: eip-q-policy/1\n');
      const { code, stderr } = await run(['check-config', learned('not-json', 'yaml.json')]);
      expect(code).toBe(2);
      expect(stderr).toMatch(
        /not-json\.yaml:\d+: utilities\.biogas\.policy\.file: \/.*\/yaml\.json: not JSON/,
      );
    });

    it('refuses a file of another layout with every problem and the file named', async () => {
      writeFileSync(
        join(dir, 'other.json'),
        JSON.stringify({ ...file, format: 'eip-q-policy/0', states: 'side3,urgency4' }),
      );
      const { code, stderr } = await run(['check-config', learned('other', 'other.json')]);
      expect(code).toBe(2);
      expect(stderr).toContain('2 problem(s)');
      expect(stderr).toMatch(/utilities\.biogas\.policy\.file: \/.*\/other\.json: format: /);
      expect(stderr).toMatch(
        /utilities\.biogas\.policy\.file: \/.*\/other\.json: states: .*learned on another context/,
      );
    });
  });

  it('edge/config/config.schema.json is generated from the schema (npx vitest run -u to refresh)', async () => {
    await expect(`${JSON.stringify(configJsonSchema(), null, 2)}\n`).toMatchFileSnapshot(
      '../../../edge/config/config.schema.json',
    );
    // The schema describes the example's keys.
    const properties = (configJsonSchema().properties ?? {}) as Record<string, unknown>;
    expect(Object.keys(properties)).toEqual(
      expect.arrayContaining(['prosumer', 'meters', 'utilities']),
    );
    expect(stringify(properties.prosumer)).toContain('pattern');
  });
});

describe('identity', () => {
  it('keystore new writes an owner-only keystore the agent unlocks, and never overwrites it', async () => {
    const file = join(dir, 'keystore.json');
    const env = { EIP_EDGE_KEYSTORE_PASSWORD: 'correct horse battery' };
    process.env.EIP_EDGE_KEYSTORE_PASSWORD = env.EIP_EDGE_KEYSTORE_PASSWORD;
    try {
      const created = await run(['keystore', 'new', '--out', file]);
      expect(created.code).toBe(0);
      const address = created.stdout.trim();
      expect(address).toMatch(/^0x[0-9a-fA-F]{40}$/);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const again = await run(['keystore', 'new', '--out', file]);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/exists; a keystore is never overwritten unless --force/);

      const wallet = await loadIdentity({ keystore: 'keystore.json', baseDir: dir, env });
      expect(wallet.address).toBe(address);
      const wrong = loadIdentity({
        keystore: 'keystore.json',
        baseDir: dir,
        env: { EIP_EDGE_KEYSTORE_PASSWORD: 'wrong password' },
      });
      await expect(wrong).rejects.toThrow(/cannot decrypt keystore .*: wrong password/);
      // The systemd credential works too, with its trailing newline.
      writeFileSync(join(dir, 'keystore-password'), `${env.EIP_EDGE_KEYSTORE_PASSWORD}\n`);
      const viaCredential = await loadIdentity({
        keystore: 'keystore.json',
        baseDir: dir,
        env: { CREDENTIALS_DIRECTORY: dir },
      });
      expect(viaCredential.address).toBe(address);
    } finally {
      delete process.env.EIP_EDGE_KEYSTORE_PASSWORD;
    }
  }, 60_000);

  it('takes a plain key from the environment and names no secret in its errors', async () => {
    const key = `0x${'42'.repeat(32)}`;
    const wallet = await loadIdentity({ baseDir: dir, env: { EIP_EDGE_PRIVATE_KEY: key } });
    expect(wallet.privateKey).toBe(key);
    const broken = loadIdentity({ baseDir: dir, env: { EIP_EDGE_PRIVATE_KEY: 'secret-ish-0x12' } });
    await expect(broken).rejects.toThrow(
      /\$EIP_EDGE_PRIVATE_KEY is not a 32-byte hex private key$/,
    );
    await expect(broken).rejects.not.toThrow(/secret-ish/);
    await expect(loadIdentity({ baseDir: dir, env: {} })).rejects.toThrow(
      /no key: set identity.keystore/,
    );
  });
});
