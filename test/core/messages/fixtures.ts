/** One valid payload per topic, with the topic parameters that go with it. */
import type { Payload, TopicName, TopicParams } from '../../../core/messages/topics.js';

const hash = (byte: string) => `0x${byte.repeat(32)}`;
const sig = `0x${'ab'.repeat(64)}1b`;
const seller = '0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A';
const buyer = '0x1563915e194D8CfBA1943570603F7606A3115508';

const offer = {
  negotiationId: hash('01'),
  seller,
  buyer,
  proposer: seller,
  round: 3,
  quantity: 100_000n,
  unitPrice: 35n * 10n ** 15n,
  previous: hash('02'),
};
const agreement = {
  negotiationId: hash('01'),
  seller,
  buyer,
  quantity: 100_000n,
  unitPrice: 35n * 10n ** 15n,
  deliveryStart: 1_800_000_000n,
  deliveryEnd: 1_800_003_600n,
  transcriptHash: hash('03'),
  sellerNonce: 1n,
  sellerDeadline: 1_800_000_600n,
  buyerNonce: 2n,
  buyerDeadline: 1_800_000_600n,
};

type Fixture<N extends TopicName> = { params: TopicParams<N>; payload: Payload<N> };
export const FIXTURES: { [N in TopicName]: Fixture<N> } = {
  agentStatus: {
    params: { prosumer: 'p0' },
    payload: {
      prosumer: 'p0',
      state: 'online',
      at_ms: 1_700_000_000_000,
      software_version: '0.1.0',
    },
  },
  refusal: {
    params: { prosumer: 'p0' },
    payload: { topic: 'eip/v1/agreements/p0', code: 'INVALID_SIGNATURE', message: 'bad', at_ms: 1 },
  },
  agreementStatus: {
    params: { prosumer: 'p1' },
    payload: {
      agreement_id: hash('04'),
      utility: 'biogas',
      at_ms: 5,
      state: 'settled',
      tx_hash: hash('05'),
      paid: 2_100n * 10n ** 18n,
      refunded: 1_400n * 10n ** 18n,
    },
  },
  negotiationOutcome: {
    params: { prosumer: 'p1' },
    payload: {
      prosumer: 'p1',
      negotiation_id: hash('01'),
      utility: 'biogas',
      role: 'buyer',
      requester: false,
      counterpart: 'p0',
      outcome: 'no-agreement',
      reason: 'deadline',
      ended_by: 'counterpart',
      rounds: 21,
      started_at_ms: 1_700_000_000_000,
      ended_at_ms: 1_700_000_004_000,
    },
  },
  deliveryConfirmation: {
    params: { prosumer: 'p1' },
    payload: {
      agreement_id: hash('04'),
      utility: 'biogas',
      seller: 'p0',
      buyer: 'p1',
      contracted_milli: 100_000,
      delivered_milli: 60_000,
      paid: 2_100n * 10n ** 18n,
      refunded: 1_400n * 10n ** 18n,
      transactions: [hash('05')],
      at_ms: 9,
    },
  },
  meterReading: {
    params: { prosumer: 'p0', meter: 'gas-main' },
    payload: {
      prosumer: 'p0',
      meter: 'gas-main',
      utility: 'biogas',
      quantity: 'volume',
      value: 1234.5,
      unit: 'm3',
      measured_at_ms: 7,
      seq: 42,
      stale: false,
    },
  },
  deliveryReport: {
    params: { prosumer: 'p1', meter: 'gas-in' },
    payload: {
      utility: 'biogas',
      meter: 'gas-in',
      report: { agreementId: hash('04'), delivered: 60_000n, measuredAt: 1_800_001_800n, seq: 3n },
      signature: sig,
    },
  },
  balance: {
    params: { prosumer: 'p0', utility: 'biogas' },
    payload: {
      prosumer: 'p0',
      utility: 'biogas',
      step: 12,
      at_ms: 3,
      production_milli: 5_000,
      consumption_milli: 1_000,
      storage_level_milli: 100_000,
      storage_capacity_milli: 200_000,
      net_milli: 100_000,
    },
  },
  negotiationRequest: {
    params: { utility: 'biogas', prosumer: 'p0' },
    payload: {
      negotiation_id: hash('01'),
      utility: 'biogas',
      prosumer: 'p0',
      address: seller,
      role: 'seller',
      quantity_milli: 100_000,
      delivery_start_ms: 10,
      delivery_end_ms: 20,
      respond_by_ms: 5,
    },
  },
  providerTrade: {
    params: { utility: 'biogas', prosumer: 'p1' },
    payload: {
      prosumer: 'p1',
      utility: 'biogas',
      order: {
        prosumer: buyer,
        role: 1,
        quantity: 50_000n,
        deliveryStart: 10n,
        deliveryEnd: 20n,
        limitPrice: 80n * 10n ** 15n,
        nonce: 7n,
        deadline: 30n,
      },
      signature: sig,
      at_ms: 5,
    },
  },
  willToNegotiate: {
    params: { to: 'p0', from: 'p1' },
    payload: {
      negotiation_id: hash('01'),
      prosumer: 'p1',
      address: buyer,
      quantity_milli: 150_000,
    },
  },
  offer: {
    params: { to: 'p1', from: 'p0' },
    payload: { utility: 'biogas', offer, signature: sig },
  },
  agreementProposal: {
    params: { to: 'p0', from: 'p1' },
    payload: {
      utility: 'biogas',
      agreement,
      signature: sig,
      acceptance: { utility: 'biogas', offer, signature: sig },
    },
  },
  breakOff: {
    params: { to: 'p1', from: 'p0' },
    payload: { negotiation_id: hash('01'), prosumer: 'p0', reason: 'deadline', round: 21 },
  },
  agreement: {
    params: { prosumer: 'p0' },
    payload: {
      utility: 'biogas',
      agreement,
      seller_signature: sig,
      buyer_signature: sig,
      transcript: [{ utility: 'biogas', offer, signature: sig }],
    },
  },
  countersigned: {
    params: { to: 'p0', from: 'p1' },
    payload: { utility: 'biogas', agreement, seller_signature: sig, buyer_signature: sig },
  },
};
