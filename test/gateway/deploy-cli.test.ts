/** `eip-gateway deploy` against a real anvil, run in-process as a user would run the binary. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { JsonRpcProvider } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UtilityMarket__factory, UtilityToken__factory } from '../../contracts/types/index.js';
import { isEipError } from '../../core/errors.js';
import { type Anvil, startAnvil } from '../../gateway/chain/anvil.js';
import { readManifest } from '../../gateway/chain/manifest.js';
import { main } from '../../gateway/cli/program.js';

let anvil: Anvil;
const dir = mkdtempSync(join(tmpdir(), 'eip-deploy-'));

beforeAll(async () => {
  anvil = await startAnvil();
}, 30_000);
afterAll(async () => {
  await anvil?.stop();
});

async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  };
  const code = await main(argv, io, env);
  return { code, stdout, stderr };
}

describe('eip-gateway deploy', () => {
  it('deploys the token and three markets and writes a manifest that matches the chain', async () => {
    const out = join(dir, 'deployment.json');
    const { code, stdout, stderr } = await run([
      'deploy',
      '--rpc',
      anvil.url,
      '--out',
      out,
      '--grace',
      '600',
    ]);
    expect(code).toBe(0);
    expect(stdout).toBe(`${out}\n`);
    expect(stderr).toMatch(/heat market at 0x/);

    const manifest = readManifest(out);
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

  it('refuses bad flags and a bad key as usage errors', async () => {
    expect((await run(['deploy', '--operator', '0x12'])).stderr).toBe(
      'eip-gateway: --operator: "0x12" is not a 0x-prefixed 20-byte address\n',
    );
    expect((await run(['deploy', '--grace', '-1'])).code).toBe(2);
    const badKey = await run(['deploy', '--rpc', anvil.url], { EIP_DEPLOYER_KEY: 'nope' });
    expect(badKey).toMatchObject({ code: 2 });
    expect(badKey.stderr).toMatch(/EIP_DEPLOYER_KEY must be a 0x-prefixed 32-byte hex private key/);
  });

  it('refuses a damaged manifest, naming the field', () => {
    const path = join(dir, 'damaged.json');
    const good = readFileSync(join(dir, 'deployment.json'), 'utf8');
    writeFileSync(path, good.replace(/"token": "0x[0-9a-fA-F]+"/, '"token": "0x12"'));
    expect(() => readManifest(path)).toThrow(
      /deployment manifest .*damaged\.json: token: must be a 0x-prefixed/,
    );
    writeFileSync(path, good.slice(0, 40));
    try {
      readManifest(path);
      expect.unreachable();
    } catch (error) {
      expect(isEipError(error, 'IO_ERROR')).toBe(true);
    }
  });

  it('is an executable the build installs', async () => {
    const bin = join(import.meta.dirname, '../../dist/gateway/cli/main.js');
    const { stdout } = await promisify(execFile)(bin, ['deploy', '--help']);
    expect(stdout).toMatch(/Usage: eip-gateway deploy \[options\]/);
    expect(stdout).toMatch(/EIP_DEPLOYER_KEY/);
  });
});
