/**
 * The chain node down while agreements arrive: the gateway books them, says nothing is lost,
 * and opens each exactly once when the node is back (anvil restarted from its state file on the
 * same port).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UtilityMarket__factory } from '../../contracts/types/index.js';
import { structHash } from '../../core/messages/eip712.js';
import { decodeMessage, subscription } from '../../core/messages/topics.js';
import type { GatewayService } from '../../gateway/service.js';
import { type MarketPark, startMarketPark } from '../support/market-park.js';
import { recordingLogger } from '../support/recording-logger.js';
import { until } from '../support/until.js';

let park: MarketPark;
let service: GatewayService;
const log = recordingLogger();

beforeAll(async () => {
  park = await startMarketPark();
  service = await park.startService({ logger: log });
}, 60_000);
afterAll(() => park?.close());

describe('the chain node down while agreements arrive', () => {
  it('opens every agreement exactly once when the node is back', async () => {
    const edge = await park.connect(park.buyer.id);
    const confirmed = new Set<string>();
    edge.on('message', (t, payload) => {
      const m = decodeMessage(t, payload);
      if (m.name === 'agreementStatus' && m.payload.state === 'confirmed') {
        confirmed.add(m.payload.agreement_id);
      }
    });
    await edge.subscribeAsync(subscription('agreementStatus', { prosumer: park.buyer.id }), {
      qos: 1,
    });
    const nonceBefore = await park.provider.getTransactionCount(park.manifest.operator, 'latest');
    const agreements = [];
    for (let i = 0; i < 5; i++) agreements.push(park.signed(await park.terms(1_000n, 3600n)));
    const ids = agreements.map((a) => structHash('Agreement', a.agreement));

    await park.stopChain();
    for (const a of agreements) await park.sendAgreement(edge, park.buyer, a);
    await until('all booked', () => ids.every((id) => service.book.get(id)?.state === 'accepted'));
    // A few ticks with the node away: nothing is lost or failed meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(ids.map((id) => service.book.get(id)?.state)).toEqual(Array(5).fill('accepted'));

    await park.startChain();
    await until('all confirmed', () => ids.every((id) => confirmed.has(id)), 20_000);
    const market = UtilityMarket__factory.connect(
      park.manifest.markets.biogas.address,
      park.provider,
    );
    const opened = (await market.queryFilter(market.filters.AgreementOpened())).map(
      (e) => e.args.agreementId,
    );
    for (const id of ids) expect(opened.filter((o) => o === id)).toHaveLength(1);
    const nonceAfter = await park.provider.getTransactionCount(park.manifest.operator, 'latest');
    expect(nonceAfter - nonceBefore).toBe(5);
    expect(service.relay.counters).toMatchObject({ failed: 0, alreadyOnChain: 0 });
    // Said once for the outage, not once per agreement and tick.
    const warnings = log.entries.filter((e) => e.level === 'warn').map((e) => e.message);
    expect(warnings.filter((m) => m.startsWith('submissions postponed'))).toHaveLength(1);
  }, 60_000);
});
