/**
 * The built `eip-gateway run`, killed with SIGKILL in the middle of relaying agreements, then
 * started again: every agreement the edges sent is opened on chain exactly once, and no
 * transaction is wasted on one opened already. The chain is its own node (anvil started here)
 * and the broker an external one (the park broker of the test), as in production: the gateway's
 * persistent MQTT session keeps what arrives while it is down.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UtilityMarket__factory } from '../../contracts/types/index.js';
import { structHash } from '../../core/messages/eip712.js';
import { decodeMessage, type Payload, subscription } from '../../core/messages/topics.js';
import { ANVIL_DEV_KEY } from '../../gateway/chain/anvil.js';
import { writeManifest } from '../../gateway/chain/manifest.js';
import { type MarketPark, startMarketPark } from '../support/market-park.js';
import { until } from '../support/until.js';

const BIN = join(import.meta.dirname, '../../dist/gateway/cli/main.js');
const AGREEMENTS = 120;

let park: MarketPark;
let config: string;

beforeAll(async () => {
  park = await startMarketPark();
  writeManifest(join(park.dataDir, 'deployment.json'), park.manifest);
  config = join(park.dataDir, 'gateway.yaml');
  const plants = Object.entries(park.directory.plants).map(
    ([id, p]) =>
      `  ${id}: { address: "${p.address}", meters: { ${Object.entries(p.meters)
        .map(([m, k]) => `${m}: "${k}"`)
        .join(', ')} } }`,
  );
  writeFileSync(
    config,
    [
      'data_dir: gateway-data',
      `broker: { url: "${park.broker.urls.tcp}", username: gateway }`,
      `chain: { rpc: "${park.anvil.url}", manifest: deployment.json }`,
      'api: false',
      'plants:',
      ...plants,
    ].join('\n'),
  );
}, 60_000);
afterAll(() => park?.close());

function startGatewayProcess(): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'run', '--config', config], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      EIP_GATEWAY_KEY: ANVIL_DEV_KEY,
      EIP_GATEWAY_MQTT_PASSWORD: 'gateway-secret',
    },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the gateway did not start')), 30_000);
    child.once('exit', (code) => reject(new Error(`the gateway exited with ${code}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (line.includes('"gateway running"')) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve(child);
      }
    });
  });
}

describe('the gateway killed while relaying', () => {
  it('opens every agreement exactly once after a restart', async () => {
    const edge = await park.connect(park.buyer.id);
    const states = new Map<string, Set<string>>();
    edge.on('message', (t, payload) => {
      const m = decodeMessage(t, payload);
      if (m.name !== 'agreementStatus') return;
      const seen = states.get(m.payload.agreement_id) ?? new Set<string>();
      seen.add(m.payload.state);
      states.set(m.payload.agreement_id, seen);
    });
    await edge.subscribeAsync(subscription('agreementStatus', { prosumer: park.buyer.id }), {
      qos: 1,
    });
    const nonceBefore = await park.provider.getTransactionCount(park.manifest.operator, 'latest');
    const agreements: Payload<'agreement'>[] = [];
    for (let i = 0; i < AGREEMENTS; i++) {
      agreements.push(park.signed(await park.terms(1_000n, 3600n)));
    }
    const ids = agreements.map((a) => structHash('Agreement', a.agreement));

    let gateway = await startGatewayProcess();
    await Promise.all(agreements.map((a) => park.sendAgreement(edge, park.buyer, a)));
    // Killed once some are on their way and before all are: mid-relay.
    await until('some submitted', () => states.size >= 10, 30_000);
    gateway.kill('SIGKILL');
    await new Promise((resolve) => gateway.once('exit', resolve));
    expect(states.size).toBeLessThan(AGREEMENTS);

    gateway = await startGatewayProcess();
    try {
      await until(
        'every agreement confirmed',
        () => ids.every((id) => states.get(id)?.has('confirmed')),
        60_000,
      );
    } finally {
      gateway.kill('SIGTERM');
      await new Promise((resolve) => gateway.once('exit', resolve));
    }
    const market = UtilityMarket__factory.connect(
      park.manifest.markets.biogas.address,
      park.provider,
    );
    const opened = await market.queryFilter(market.filters.AgreementOpened(), park.manifest.block);
    const openedIds = opened.map((e) => e.args.agreementId);
    for (const id of ids) expect(openedIds.filter((o) => o === id)).toHaveLength(1);
    // One transaction per agreement: none sent twice, none reverted as a replay.
    const nonceAfter = await park.provider.getTransactionCount(park.manifest.operator, 'latest');
    expect(nonceAfter - nonceBefore).toBe(AGREEMENTS);
  }, 120_000);
});
