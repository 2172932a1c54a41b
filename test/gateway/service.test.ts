/**
 * The gateway's market service against the real parts: anvil with the deployed markets, the park
 * broker with logins and the ACL, and plants as MQTT.js clients that publish what their edge
 * agents would. Agreements are relayed, statuses reach both parties, delivery reports are posted,
 * and settlement pays and refunds; forged and replayed messages are refused and answered.
 */
import { Wallet } from 'ethers';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UtilityMarket__factory } from '../../contracts/types/index.js';
import { signDigest } from '../../core/messages/ecdsa.js';
import { structHash, typedDataDigest } from '../../core/messages/eip712.js';
import {
  decodeMessage,
  encodePayload,
  type Payload,
  subscription,
  topic,
} from '../../core/messages/topics.js';
import type { GatewayService } from '../../gateway/service.js';
import { type MarketPark, PRICE, startMarketPark } from '../support/market-park.js';
import {
  brokenOff,
  counterpartReport,
  type OutcomeReport,
  outcomeReport,
} from '../support/negotiation-reports.js';
import { until } from '../support/until.js';

let park: MarketPark;
let service: GatewayService;
const inbox: { prosumer: string; message: ReturnType<typeof decodeMessage> }[] = [];
let plantA: MqttClient;
let plantB: MqttClient;

async function plant(name: string): Promise<MqttClient> {
  const client = await park.connect(name);
  client.on('message', (t, payload) =>
    inbox.push({ prosumer: name, message: decodeMessage(t, payload) }),
  );
  await client.subscribeAsync(
    (['agreementStatus', 'deliveryConfirmation', 'refusal'] as const).map((n) =>
      subscription(n, { prosumer: name }),
    ),
    { qos: 1 },
  );
  return client;
}

beforeAll(async () => {
  park = await startMarketPark({ graceS: 2 });
  service = await park.startService();
  plantA = await plant(park.seller.id);
  plantB = await plant(park.buyer.id);
}, 60_000);

afterAll(() => park?.close());

const statuses = (prosumer: string, id: string) =>
  inbox
    .filter(
      (m) =>
        m.prosumer === prosumer &&
        m.message.name === 'agreementStatus' &&
        m.message.payload.agreement_id === id,
    )
    .map((m) => m.message.payload as Payload<'agreementStatus'>);

describe('the gateway service', () => {
  it('relays an agreement once, tells both parties, and settles a partial delivery with a refund', async () => {
    const agreement = await park.terms(100_000n, 3n);
    const id = structHash('Agreement', agreement);
    await park.sendAgreement(plantB, park.buyer, park.signed(agreement));
    await until('confirmed at both parties', () =>
      ['plant-a', 'plant-b'].every((p) => statuses(p, id).some((s) => s.state === 'confirmed')),
    );
    // The same agreement again, from the other party: recognised, not submitted again.
    const sent = service.sender.counters.sent;
    await park.sendAgreement(plantA, park.seller, park.signed(agreement));
    await until('the duplicate counted', () => service.relay.counters.duplicates === 1);
    expect(service.sender.counters.sent).toBe(sent);

    await park.report(plantB, park.buyer, agreement, 60_000n, 1n);
    await park.report(plantA, park.seller, agreement, 70_000n, 1n);
    await until(
      'settled',
      () => statuses('plant-a', id).some((s) => s.state === 'settled'),
      20_000,
    );
    const confirmation = inbox.find(
      (m) => m.prosumer === 'plant-b' && m.message.name === 'deliveryConfirmation',
    )?.message.payload as Payload<'deliveryConfirmation'>;
    expect(confirmation).toMatchObject({
      agreement_id: id,
      seller: 'plant-a',
      buyer: 'plant-b',
      contracted_milli: 100_000,
      delivered_milli: 60_000, // the lower of the two meters
      paid: 60_000n * PRICE,
      refunded: 40_000n * PRICE,
    });
    // Opening, two reports, settlement.
    expect(confirmation.transactions).toHaveLength(4);
    // The duplicate was answered to its sender alone.
    expect(statuses('plant-a', id).filter((s) => s.state === 'confirmed')).toHaveLength(2);
    expect(statuses('plant-b', id).map((s) => s.state)).toEqual([
      'submitted',
      'confirmed',
      'delivering',
      'delivering',
      'settled',
    ]);
  }, 30_000);

  it('settles at once when the buyer meter reports the whole quantity', async () => {
    const agreement = await park.terms(5_000n, 3600n);
    const id = structHash('Agreement', agreement);
    await park.sendAgreement(plantA, park.seller, park.signed(agreement));
    await until('open', () => service.book.get(id)?.state === 'open');
    await park.report(plantB, park.buyer, agreement, 5_000n, 1n);
    await until('settled', () => service.book.get(id)?.state === 'settled');
    expect(service.book.get(id)?.settlement).toEqual({
      delivered: '5000',
      paid: (5_000n * PRICE).toString(),
      refunded: '0',
    });
  });

  it('refuses forged agreements and reports, and answers on the sender error topic', async () => {
    const agreement = await park.terms(1_000n, 60n);
    const forged = park.signed(agreement, {
      seller: new Wallet(Wallet.createRandom().privateKey),
      buyer: park.buyer.wallet,
    });
    await park.sendAgreement(plantB, park.buyer, forged);
    // A report of a meter key that is not the plant's.
    await park.report(plantB, park.buyer, agreement, 1n, 1n, park.seller.meterKey);
    // Not JSON at all.
    await plantB.publishAsync(topic('agreement', { prosumer: 'plant-b' }), '{not json', { qos: 1 });
    await until(
      'three refusals',
      () =>
        inbox.filter((m) => m.prosumer === 'plant-b' && m.message.name === 'refusal').length >= 3,
    );
    const codes = inbox
      .filter((m) => m.prosumer === 'plant-b' && m.message.name === 'refusal')
      .map((m) => (m.message.payload as Payload<'refusal'>).code);
    expect(codes).toEqual(['INVALID_SIGNATURE', 'INVALID_SIGNATURE', 'INVALID_MESSAGE']);
    expect(service.link.counters.refused).toMatchObject({
      INVALID_SIGNATURE: 2,
      INVALID_MESSAGE: 1,
    });
    expect(service.book.get(structHash('Agreement', agreement))).toBeUndefined();
  });

  it('reports an agreement the market refuses as failed, with the reason', async () => {
    const agreement = await park.terms(1_000n, 60n);
    // Spent nonces: the first test's agreement used nonce 1 of both parties.
    const spent = { ...agreement, sellerNonce: 1n, buyerNonce: 999n };
    const id = structHash('Agreement', spent);
    await park.sendAgreement(plantA, park.seller, park.signed(spent));
    await until('failed', () => statuses('plant-a', id).some((s) => s.state === 'failed'));
    const failed = statuses('plant-b', id).find((s) => s.state === 'failed');
    expect(failed).toMatchObject({ reason: expect.stringMatching(/UtilityMarketNonceUsed/) });
    expect(service.relay.counters.failed).toBe(1);
  });

  it("keeps both parties' reports of a negotiation, and refuses one naming a plant the park lacks", async () => {
    const id = `0x${'7e'.repeat(32)}`;
    const send = (from: MqttClient, report: OutcomeReport) =>
      from.publishAsync(
        topic('negotiationOutcome', { prosumer: report.prosumer }),
        encodePayload('negotiationOutcome', report),
        { qos: 1 },
      );
    const broken = outcomeReport({ negotiation_id: id, rounds: 21, ...brokenOff('self') });
    await send(plantA, broken);
    await send(plantB, counterpartReport(broken));
    await until('both reports kept', () => service.negotiations.get(id)?.responderSaid != null);
    expect(service.negotiations.get(id)).toMatchObject({
      requester: 'plant-a',
      responder: 'plant-b',
      outcome: 'no-agreement',
      reason: 'deadline',
      endedBy: 'plant-a',
    });
    expect(service.negotiations.counts({}).biogas).toMatchObject({ failed: 1, agreementRate: 0 });

    await send(
      plantA,
      outcomeReport({ negotiation_id: `0x${'7f'.repeat(32)}`, counterpart: 'plant-z' }),
    );
    await until('the refusal', () =>
      inbox.some(
        (m) =>
          m.prosumer === 'plant-a' &&
          m.message.name === 'refusal' &&
          m.message.payload.message.includes('plant-z is not a plant of this park'),
      ),
    );
    expect(service.negotiations.get(`0x${'7f'.repeat(32)}`)).toBeUndefined();
  });

  it("follows each agent's presence: online as it says, offline by its last will", async () => {
    const status = (state: 'online' | 'offline') =>
      encodePayload('agentStatus', { prosumer: 'plant-a', state, at_ms: Date.now() });
    const statusTopic = topic('agentStatus', { prosumer: 'plant-a' });
    const agent = await park.connect('plant-a', {
      will: { topic: statusTopic, payload: Buffer.from(status('offline')), qos: 1, retain: true },
    });
    await agent.publishAsync(statusTopic, status('online'), { qos: 1, retain: true });
    await until('online', () => service.presence.get('plant-a')?.state === 'online');
    // A dropped connection, not a clean disconnect: the broker sends the will.
    agent.stream.destroy();
    await until('offline', () => service.presence.get('plant-a')?.state === 'offline');
  });

  it('follows an agreement someone else put on chain first, without counting it as a new trade', async () => {
    const agreement = await park.terms(2_000n, 3600n);
    const id = structHash('Agreement', agreement);
    const signed = park.signed(agreement);
    // Anyone may relay: here the buyer itself, straight to the market.
    const market = UtilityMarket__factory.connect(
      park.manifest.markets.biogas.address,
      park.buyer.wallet.connect(park.provider),
    );
    const receipt = await (
      await market.openAgreement(agreement, signed.seller_signature, signed.buyer_signature)
    ).wait();
    const opened = service.relay.counters.opened;
    await park.sendAgreement(plantB, park.buyer, signed);
    await until('followed', () => statuses('plant-a', id).some((s) => s.state === 'confirmed'));
    expect(service.relay.counters).toMatchObject({ opened, alreadyOnChain: 1 });
    expect(statuses('plant-a', id).at(-1)).toMatchObject({
      state: 'confirmed',
      tx_hash: receipt?.hash,
      block: receipt?.blockNumber,
    });
  });

  it("places a plant's signed order with the provider, and settles it on the plant's meter", async () => {
    const start = BigInt(Math.floor(Date.now() / 1000));
    const order = {
      prosumer: park.buyer.wallet.address,
      role: 1 as const, // buying from the provider
      quantity: 2_000n,
      deliveryStart: start,
      deliveryEnd: start + 3600n,
      limitPrice: park.manifest.markets.biogas.providerSellsAt,
      nonce: 424_242n,
      deadline: start + 600n,
    };
    const signature = signDigest(
      park.buyer.wallet,
      typedDataDigest(park.domain, 'ProviderOrder', order),
    );
    const send = (payload: Payload<'providerTrade'>) =>
      plantB.publishAsync(
        topic('providerTrade', { utility: 'biogas', prosumer: 'plant-b' }),
        encodePayload('providerTrade', payload),
        { qos: 1 },
      );
    const message = {
      prosumer: 'plant-b',
      utility: 'biogas' as const,
      order,
      signature,
      at_ms: Date.now(),
    };
    await send(message);
    // Sent twice (a lost acknowledgement): placed once.
    await send(message);
    const confirmed = () =>
      inbox.find(
        (m) =>
          m.prosumer === 'plant-b' &&
          m.message.name === 'agreementStatus' &&
          m.message.payload.state === 'confirmed' &&
          m.message.payload.agreement !== undefined,
      )?.message.payload as Extract<Payload<'agreementStatus'>, { state: 'confirmed' }> | undefined;
    await until('the provider trade confirmed with its terms', () => confirmed() !== undefined);
    const terms = confirmed()?.agreement as NonNullable<ReturnType<typeof confirmed>>['agreement'] &
      object;
    expect(terms).toMatchObject({ buyer: park.buyer.wallet.address, quantity: 2_000n });
    expect(service.orders.counters).toMatchObject({ accepted: 1, duplicates: 1, placed: 1 });
    const id = confirmed()?.agreement_id as string;
    // The buyer's meter reports the whole quantity: settled at once, the provider paid.
    await park.report(plantB, park.buyer, terms, 2_000n, 1n);
    await until('settled', () => service.book.get(id)?.state === 'settled');
    expect(service.book.get(id)?.settlement).toMatchObject({ delivered: '2000', refunded: '0' });
    const delivery = () =>
      inbox.find(
        (m) => m.message.name === 'deliveryConfirmation' && m.message.payload.agreement_id === id,
      )?.message.payload;
    await until('the delivery confirmation', () => delivery() !== undefined);
    expect(delivery()).toMatchObject({ seller: 'provider', buyer: 'plant-b' });

    // An order signed by someone else for this plant is refused and answered.
    const forged = { ...message, order: { ...order, nonce: 1n }, signature };
    await send(forged);
    await until('refused', () =>
      inbox.some(
        (m) =>
          m.prosumer === 'plant-b' &&
          m.message.name === 'refusal' &&
          m.message.payload.topic.includes('/provider/') &&
          m.message.payload.code === 'INVALID_SIGNATURE',
      ),
    );
  });
});
