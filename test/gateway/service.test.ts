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
import { structHash } from '../../core/messages/eip712.js';
import {
  decodeMessage,
  encodePayload,
  type Payload,
  subscription,
  topic,
} from '../../core/messages/topics.js';
import type { GatewayService } from '../../gateway/service.js';
import { type MarketPark, PRICE, startMarketPark } from '../support/market-park.js';
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

  it('answers an order to the main provider, which it cannot place, instead of dropping it', async () => {
    const now = Date.now();
    await plantB.publishAsync(
      topic('providerTrade', { utility: 'biogas', prosumer: 'plant-b' }),
      encodePayload('providerTrade', {
        prosumer: 'plant-b',
        utility: 'biogas',
        role: 'buyer',
        quantity_milli: 1_000,
        limit_price_milli: 80_000,
        delivery_start_ms: now,
        delivery_end_ms: now + 3_600_000,
        at_ms: now,
      }),
      { qos: 1 },
    );
    await until('answered', () =>
      inbox.some(
        (m) =>
          m.prosumer === 'plant-b' &&
          m.message.name === 'refusal' &&
          m.message.payload.code === 'NOT_SUPPORTED',
      ),
    );
    expect(service.link.counters.refused.NOT_SUPPORTED).toBe(1);
  });
});
