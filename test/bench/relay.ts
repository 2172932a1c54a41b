/**
 * The relay to the chain: agreements published by an edge over the park broker, checked, booked
 * and opened on the biogas market on anvil (a block per transaction, as anvil mines), each
 * confirmation sent back to the edge. Two ways in the same run:
 *
 * - many in flight: every agreement published at once, the relay pipelining them (its own
 *   nonces, one synced write per batch);
 * - one at a time: each agreement published after the previous one's confirmation came back,
 *   which is also the latency of one agreement from the edge's publish to its confirmation.
 *
 * The gateway polls anvil for receipts every 50 ms here (`eip-gateway run` uses 200 ms on its
 * embedded chain, 1 s on others): with instant mining, the poll sets the floor of the latency.
 */
import type { MqttClient } from 'mqtt';
import { structHash } from '../../core/messages/eip712.js';
import { decodeMessage, type Payload, subscription } from '../../core/messages/topics.js';
import { textTable } from '../../core/text-table.js';
import { type MarketPark, startMarketPark } from '../support/market-park.js';

const IN_FLIGHT = 400;
const ONE_BY_ONE = 60;
const POLL_MS = 50;

interface Run {
  readonly count: number;
  readonly seconds: number;
  readonly latenciesMs: readonly number[];
}

export async function relayTable(): Promise<string> {
  const park = await startMarketPark();
  try {
    const service = await park.startService({ pollMs: POLL_MS, tickMs: 1000 });
    const edge = await park.connect(park.buyer.id);
    const confirmed = new Map<string, number>();
    edge.on('message', (t, payload) => {
      const message = decodeMessage(t, payload);
      if (message.name === 'agreementStatus' && message.payload.state === 'confirmed') {
        confirmed.set(message.payload.agreement_id, performance.now());
      }
    });
    await edge.subscribeAsync(subscription('agreementStatus', { prosumer: park.buyer.id }), {
      qos: 1,
    });
    const batch = await relay(park, edge, confirmed, IN_FLIGHT, true);
    const single = await relay(park, edge, confirmed, ONE_BY_ONE, false);
    const rows = [
      row(`${IN_FLIGHT} agreements published at once`, batch, single),
      row(`${ONE_BY_ONE} agreements, each after the last's confirmation`, single, single),
    ];
    const stats = service.sender.counters;
    return `${textTable(
      ['relay to anvil', 'agreements/s', 'vs one at a time', 'latency p50', 'p99'],
      rows,
      ['left', 'right', 'right', 'right', 'right'],
    )}\n\nSynced writes of the book: ${service.book.commitCount} for ${stats.sent} transactions.`;
  } finally {
    await park.close();
  }
}

async function relay(
  park: MarketPark,
  edge: MqttClient,
  confirmed: Map<string, number>,
  count: number,
  atOnce: boolean,
): Promise<Run> {
  const agreements: Payload<'agreement'>[] = [];
  for (let i = 0; i < count; i++) agreements.push(park.signed(await park.terms(1_000n, 3600n)));
  const sentAt = new Map<string, number>();
  const started = performance.now();
  const send = async (signed: Payload<'agreement'>) => {
    const id = structHash('Agreement', signed.agreement);
    sentAt.set(id, performance.now());
    await park.sendAgreement(edge, park.buyer, signed);
    return id;
  };
  if (atOnce) {
    const ids = await Promise.all(agreements.map(send));
    await waitFor(() => ids.every((id) => confirmed.has(id)), 120_000);
  } else {
    for (const signed of agreements) {
      const id = await send(signed);
      await waitFor(() => confirmed.has(id), 10_000);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const latenciesMs = [...sentAt].map(([id, at]) => (confirmed.get(id) ?? Number.NaN) - at);
  return { count, seconds, latenciesMs };
}

function row(name: string, run: Run, baseline: Run): string[] {
  const rate = run.count / run.seconds;
  const sorted = [...run.latenciesMs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return [
    name,
    rate.toFixed(0),
    `${(rate / (baseline.count / baseline.seconds)).toFixed(1)}x`,
    `${at(0.5).toFixed(0)} ms`,
    `${at(0.99).toFixed(0)} ms`,
  ];
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('relay bench: confirmations did not come');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
