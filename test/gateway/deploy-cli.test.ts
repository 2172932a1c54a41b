/** `eip-gateway deploy` against a real anvil, run in-process as a user would run the binary. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { JsonRpcProvider, Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UtilityMarket__factory, UtilityToken__factory } from '../../contracts/types/index.js';
import { isEipError } from '../../core/errors.js';
import { ANVIL_DEV_KEY, type Anvil, startAnvil } from '../../gateway/chain/anvil.js';
import { readManifest } from '../../gateway/chain/manifest.js';
import { main } from '../../gateway/cli/program.js';
import { capture } from '../support/capture.js';

const dir = mkdtempSync(join(tmpdir(), 'eip-deploy-'));
const manifestPath = join(dir, 'deployment.json');
let anvil: Anvil;
let deployment: Awaited<ReturnType<typeof run>>;

function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  return capture((io) => main(argv, io, env));
}

async function deployerNonce(): Promise<number> {
  const provider = new JsonRpcProvider(anvil.url);
  try {
    return await provider.getTransactionCount(new Wallet(ANVIL_DEV_KEY).address);
  } finally {
    provider.destroy();
  }
}

beforeAll(async () => {
  anvil = await startAnvil();
  deployment = await run(['deploy', '--rpc', anvil.url, '--out', manifestPath, '--grace', '600']);
}, 60_000);
afterAll(async () => {
  await anvil?.stop();
});

describe('eip-gateway deploy', () => {
  it('deploys the token and three markets and writes a manifest that matches the chain', async () => {
    expect(deployment.code).toBe(0);
    expect(deployment.stdout).toBe(`${manifestPath}\n`);
    expect(deployment.stderr).toMatch(/heat market at 0x/);

    const manifest = readManifest(manifestPath);
    expect(manifest.chainId).toBe(31337);
    const provider = new JsonRpcProvider(anvil.url);
    try {
      const token = UtilityToken__factory.connect(manifest.token, provider);
      expect(await token.symbol()).toBe('UTK');
      for (const [id, entry] of Object.entries(manifest.markets)) {
        const market = UtilityMarket__factory.connect(entry.address, provider);
        expect(await market.utility()).toBe(id);
        expect(await market.token()).toBe(manifest.token);
        expect(await market.providerSellsAt()).toBe(entry.providerSellsAt);
        expect(await market.gracePeriod()).toBe(600n);
      }
    } finally {
      provider.destroy();
    }
  });

  it('says which endpoint is unreachable, and writes nothing', async () => {
    const out = join(dir, 'never.json');
    const { code, stderr } = await run(['deploy', '--rpc', 'http://127.0.0.1:1', '--out', out]);
    expect(code).toBe(1);
    expect(stderr).toBe(
      'eip-gateway: no chain answers at http://127.0.0.1:1 (start one with: npx anvil)\n',
    );
    expect(() => readFileSync(out)).toThrow();
  });

  it('refuses, before deploying anything, a manifest path it could not write', async () => {
    const before = await deployerNonce();
    const out = join(dir, 'missing-folder', 'deployment.json');
    const { code, stderr } = await run(['deploy', '--rpc', anvil.url, '--out', out]);
    expect(code).toBe(2);
    expect(stderr).toBe(`eip-gateway: --out: cannot write ${out}: its folder does not exist\n`);
    expect(await deployerNonce()).toBe(before);
  });

  it('refuses bad flags and a bad key as usage errors, naming them', async () => {
    for (const [argv, message] of [
      [['--operator', '0x12'], '--operator: "0x12" is not a non-zero 0x-prefixed address'],
      [
        ['--provider', `0x${'0'.repeat(40)}`],
        '--provider: "0x0000000000000000000000000000000000000000" is not a non-zero',
      ],
      [['--grace', '-1'], '--grace: "-1" is not a whole number of seconds from 0 to 31536000'],
      [['--grace', '99999999999'], '--grace: "99999999999" is not a whole number of seconds'],
    ] as const) {
      const result = await run(['deploy', '--rpc', anvil.url, ...argv]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`eip-gateway: ${message}`);
    }
    const badKey = await run(['deploy', '--rpc', anvil.url], { EIP_DEPLOYER_KEY: 'nope' });
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toBe(
      'eip-gateway: $EIP_DEPLOYER_KEY must be a 0x-prefixed 32-byte hex private key\n',
    );
  });

  it('refuses a damaged manifest, naming the field', () => {
    const path = join(dir, 'damaged.json');
    const good = readFileSync(manifestPath, 'utf8');
    writeFileSync(path, good.replace(/"token": "0x[0-9a-fA-F]+"/, '"token": "0x12"'));
    expect(() => readManifest(path)).toThrow(
      /deployment manifest .*damaged\.json: token: must be a 0x-prefixed/,
    );
    writeFileSync(path, good.slice(0, 40));
    const truncated = (() => {
      try {
        return readManifest(path);
      } catch (error) {
        return error;
      }
    })();
    expect(isEipError(truncated, 'IO_ERROR')).toBe(true);
    expect((truncated as Error).message).toMatch(/cannot read deployment manifest .*damaged\.json/);
  });

  it('is an executable the build installs', async () => {
    const bin = join(import.meta.dirname, '../../dist/gateway/cli/main.js');
    const { stdout } = await promisify(execFile)(bin, ['deploy', '--help']);
    expect(stdout).toMatch(/Usage: eip-gateway deploy \[options\]/);
    expect(stdout).toMatch(/EIP_DEPLOYER_KEY/);
  });
});
