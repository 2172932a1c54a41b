/**
 * Agents negotiating through a real broker (aedes in-process on loopback) with real MQTT.js
 * clients: discovery, the choice among several counterparts, the signed exchange, and what
 * happens when messages are malformed or a counterpart goes quiet.
 */
import { Wallet } from 'ethers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/logger.js';
import { assertSignedBy, marketDomain } from '../../../core/messages/eip712.js';
import { type Payload, TOPICS } from '../../../core/messages/topics.js';
import type { Role } from '../../../core/negotiation/issues.js';
import { type AgentSpec, negotiate } from '../../../core/negotiation/protocol.js';
import { milli, quantityBaseUnits, unitPriceBaseUnits } from '../../../core/units.js';
import {
  type NegotiationOutcome,
  Negotiator,
  outcomeMessage,
  type Responder,
} from '../../../edge/negotiation/negotiator.js';
import { bilateral, TABLE1 } from '../../core/negotiation/setup.js';
import { startBroker, type TestBroker } from '../../support/broker.js';
import { until } from '../../support/until.js';
import { biogasRequest } from './requests.js';

const domain = marketDomain(31337, '0x5FbDB2315678afecb367f032d93F642f64180aa3');
const engine = bilateral(TABLE1.seller, TABLE1.buyer);
const SPEC: Record<Role, AgentSpec> = { seller: engine.seller, buyer: engine.buyer };

let broker: TestBroker;
beforeAll(async () => {
  broker = await startBroker();
});
afterAll(async () => {
  await broker.close();
});
const running: Negotiator[] = [];
afterEach(async () => {
  for (const negotiator of running.splice(0)) await negotiator.close();
});

interface TestAgent {
  readonly negotiator: Negotiator;
  readonly wallet: Wallet;
  readonly agreements: Payload<'agreement'>[];
  readonly outcomes: NegotiationOutcome[];
}

let keyCounter = 1;
async function agent(
  prosumer: string,
  responder: Responder,
  options: { roundTimeoutMs?: number } = {},
): Promise<TestAgent> {
  const wallet = new Wallet(`0x${(keyCounter++).toString(16).padStart(64, '0')}`);
  const agreements: Payload<'agreement'>[] = [];
  const outcomes: NegotiationOutcome[] = [];
  const negotiator = new Negotiator({
    prosumer,
    signer: wallet,
    client: await broker.connect(),
    markets: { biogas: domain },
    responder,
    onAgreement: async (signed) => {
      agreements.push(signed);
    },
    onOutcome: (outcome) => outcomes.push(outcome),
    logger: silentLogger,
    discoveryMs: 150,
    roundTimeoutMs: options.roundTimeoutMs ?? 2000,
  });
  await negotiator.start();
  running.push(negotiator);
  return { negotiator, wallet, agreements, outcomes };
}

/** Answers any request for the opposite role with the seed's psi and `quantity` m3. */
const answersWith =
  (quantity: number): Responder =>
  (request) => ({
    spec: SPEC[request.role === 'seller' ? 'buyer' : 'seller'],
    quantity: milli(quantity * 1000),
  });
const never: Responder = () => null;

const request = (role: Role, quantity: number) => ({
  utility: 'biogas' as const,
  role,
  quantity: milli(quantity * 1000),
  spec: SPEC[role],
  deliveryStartMs: 1_800_000_000_000,
  deliveryEndMs: 1_800_003_600_000,
});

describe('negotiation over MQTT', () => {
  it('finds a counterpart and agrees on what the engine computes, signed by both', async () => {
    const seller = await agent('p0', never);
    const buyer = await agent('p1', answersWith(150));
    const outcome = await seller.negotiator.request(request('seller', 100));
    const expected = negotiate(engine);
    if (expected.kind !== 'agreement') throw new Error('engine found no agreement');

    expect(outcome.counterpart).toBe('p1');
    // Whoever settled the last issue proposed; the other countersigned, handed the agreement to
    // the gateway (once, from one side) and returned it to the proposer: both end agreed.
    await until('the buyer to finish', () => buyer.outcomes.length === 1, 3000);
    const kinds = [outcome.result.kind, buyer.outcomes[0]?.result.kind];
    expect(kinds).toEqual(['agreed', 'agreed']);
    const handed = [...seller.agreements, ...buyer.agreements];
    expect(handed).toHaveLength(1);
    const signed = handed[0];
    if (!signed) throw new Error('no countersigned agreement');
    expect(signed.agreement.quantity).toBe(quantityBaseUnits(expected.quantity));
    expect(signed.agreement.unitPrice).toBe(unitPriceBaseUnits(expected.price));
    expect(signed.agreement.deliveryStart).toBe(1_800_000_000n);
    assertSignedBy(
      domain,
      'Agreement',
      signed.agreement,
      signed.seller_signature,
      seller.wallet.address,
    );
    assertSignedBy(
      domain,
      'Agreement',
      signed.agreement,
      signed.buyer_signature,
      buyer.wallet.address,
    );
    expect(signed.transcript).toHaveLength(expected.transcript.length);
    expect(seller.negotiator.counters).toMatchObject({ requests: 1, agreements: 1, failed: 0 });
    expect(buyer.negotiator.counters).toMatchObject({ responses: 1, agreements: 1 });
  });

  it('picks the counterpart closest in quantity and withdraws from the others', async () => {
    const buyer = await agent('b0', never);
    const small = await agent('s-small', answersWith(20));
    const close = await agent('s-close', answersWith(140));
    const outcome = await buyer.negotiator.request(request('buyer', 150));
    expect(outcome.counterpart).toBe('s-close');
    await until('the withdrawal', () => small.outcomes.length === 1, 3000);
    expect(small.outcomes[0]?.result).toMatchObject({ kind: 'no-agreement', reason: 'withdrawn' });
    // The buyer requested, the seller opened; the buyer accepted last and proposed.
    await until('the seller to finish', () => close.outcomes.length === 1, 3000);
    expect([outcome.result.kind, close.outcomes[0]?.result.kind]).toEqual(['agreed', 'agreed']);

    // What each reports to the gateway: the one not chosen was never a party, and says nothing.
    expect(outcomeMessage('s-small', small.outcomes[0] as NegotiationOutcome)).toBeNull();
    const reports = [
      outcomeMessage('b0', outcome),
      outcomeMessage('s-close', close.outcomes[0] as NegotiationOutcome),
    ];
    expect(reports).toMatchObject([
      { prosumer: 'b0', role: 'buyer', requester: true, counterpart: 's-close', outcome: 'agreed' },
      {
        prosumer: 's-close',
        role: 'seller',
        requester: false,
        counterpart: 'b0',
        outcome: 'agreed',
      },
    ]);
    for (const report of reports) {
      // Valid by the catalogue's schema, as the gateway will check it.
      expect(TOPICS.negotiationOutcome.schema.safeParse(report).error).toBeUndefined();
      expect(report?.negotiation_id).toBe(outcome.negotiationId);
      expect(report?.rounds).toBeGreaterThan(0);
      expect(report?.ended_at_ms).toBeGreaterThanOrEqual(report?.started_at_ms ?? Infinity);
    }
  });

  it('reports no counterpart when nobody answers', async () => {
    const lonely = await agent('lonely', never);
    await agent('bystander', never);
    const outcome = await lonely.negotiator.request(request('seller', 10));
    expect(outcome.result).toEqual({ kind: 'no-counterpart' });
    expect(outcomeMessage('lonely', outcome)).toMatchObject({
      requester: true,
      counterpart: null,
      outcome: 'no-counterpart',
      reason: null,
      rounds: 0,
    });
  });

  it('counts malformed and unsolicited messages without stopping', async () => {
    const target = await agent('target', never);
    const rogue = await broker.connect();
    await rogue.publishAsync('eip/v1/negotiations/target/rogue/offer', 'not json', { qos: 1 });
    await rogue.publishAsync(
      'eip/v1/negotiations/target/rogue/break-off',
      JSON.stringify({
        negotiation_id: `0x${'ab'.repeat(32)}`,
        prosumer: 'rogue',
        reason: 'deadline',
        round: 1,
      }),
      { qos: 1 },
    );
    await until('two refusals', () => target.negotiator.counters.invalidMessages === 2, 3000);
    // Still negotiating normally afterwards.
    await agent('peer', answersWith(150));
    const outcome = await target.negotiator.request(request('seller', 100));
    expect(['agreed', 'proposed']).toContain(outcome.result.kind);
  });

  it("counts other plants' valid requests by utility and role, late or while busy too", async () => {
    const watcher = await agent('watcher', never);
    const peer = await broker.connect();
    const ask = (prosumer: string, role: Role, respondByMs?: number) =>
      peer.publishAsync(...biogasRequest(prosumer, role, respondByMs), { qos: 1 });
    // Busy with its own request (not counted) while the others come in.
    const own = watcher.negotiator.request(request('seller', 10));
    await ask('p1', 'buyer');
    await ask('p2', 'buyer', Date.now() - 1); // too late to answer, but seen
    await ask('p3', 'seller');
    await peer.publishAsync('eip/v1/market/biogas/requests/p4', '{"role":"buyer"}', { qos: 1 });
    await until('the malformed one refused', () => watcher.negotiator.counters.invalidMessages > 0);
    await own;

    expect(watcher.negotiator.takeRequestsSeen('biogas')).toEqual({ buyer: 2, seller: 1 });
    // Taken: counting starts again.
    expect(watcher.negotiator.takeRequestsSeen('biogas')).toEqual({ buyer: 0, seller: 0 });
    expect(watcher.negotiator.takeRequestsSeen('electricity')).toEqual({ buyer: 0, seller: 0 });
  });

  it('breaks off with a counterpart that goes quiet', async () => {
    const seller = await agent('quiet-s', never, { roundTimeoutMs: 200 });
    // Answers the request, then never plays: its session is never set up to respond.
    const buyerClient = await broker.connect();
    const wallet = Wallet.createRandom();
    await buyerClient.subscribeAsync('eip/v1/market/biogas/requests/+');
    buyerClient.on('message', (_topic, raw) => {
      const message = JSON.parse(raw.toString()) as Payload<'negotiationRequest'>;
      void buyerClient.publishAsync(
        'eip/v1/negotiations/quiet-s/mute/will',
        JSON.stringify({
          negotiation_id: message.negotiation_id,
          prosumer: 'mute',
          address: wallet.address,
          quantity_milli: 100_000,
        }),
        { qos: 1 },
      );
    });
    const outcome = await seller.negotiator.request(request('seller', 100));
    expect(outcome.result).toMatchObject({ kind: 'no-agreement', reason: 'timeout', by: 'self' });
    expect(outcomeMessage('quiet-s', outcome)).toMatchObject({
      outcome: 'no-agreement',
      reason: 'timeout',
      ended_by: 'self',
    });
  });
});

describe('a negotiator whose connection drops while it subscribes', () => {
  it('starts anyway and says so: MQTT.js subscribes again when it reconnects', async () => {
    const warnings: string[] = [];
    const client = {
      publish: () => undefined,
      subscribe: (_: string[], callback?: (error: Error | null) => void) =>
        callback?.(new Error('Connection closed')),
      on: () => undefined,
      removeListener: () => undefined,
    };
    const negotiator = new Negotiator({
      prosumer: 'offline',
      signer: new Wallet(`0x${'71'.repeat(32)}`),
      client,
      markets: { biogas: domain },
      responder: () => null,
      onAgreement: async () => undefined,
      logger: {
        ...silentLogger,
        warn: (_: unknown, message?: string) => warnings.push(message ?? ''),
      },
    });
    await expect(negotiator.start()).resolves.toBeUndefined();
    expect(warnings).toEqual(['negotiation topics not subscribed yet; they will be on reconnect']);
  });
});
