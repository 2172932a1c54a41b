/**
 * The edge's delivery reports: a counter's increase goes to the agreements in their windows,
 * first come first served, each up to its quantity; reports wait until the gateway has booked
 * the agreement, are signed by the metering key, and survive a restart of the agent.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/logger.js';
import {
  type Agreement,
  assertSignedBy,
  marketDomain,
  structHash,
} from '../../core/messages/eip712.js';
import type { Payload } from '../../core/messages/topics.js';
import { DeliveryReporter } from '../../edge/delivery/reporter.js';

const meterKey = Wallet.createRandom();
const domain = marketDomain(31337, '0x5FbDB2315678afecb367f032d93F642f64180aa3');
let dir: string;
let sent: { meter: string; report: Payload<'deliveryReport'> }[];

function reporter(file = join(dir, 'deliveries.json')) {
  return new DeliveryReporter({
    signer: meterKey,
    markets: { biogas: domain },
    meterFor: (utility, way) => (utility === 'biogas' && way === 'export' ? 'gas-out' : undefined),
    send: async (meter, report) => {
      sent.push({ meter, report });
    },
    file,
    logger: silentLogger,
  });
}

function agreement(n: number, startS: number, quantity: bigint): Payload<'agreement'> {
  const terms: Agreement = {
    negotiationId: `0x${n.toString(16).padStart(64, '0')}`,
    seller: Wallet.createRandom().address,
    buyer: Wallet.createRandom().address,
    quantity,
    unitPrice: 1n,
    deliveryStart: BigInt(startS),
    deliveryEnd: BigInt(startS + 100),
    transcriptHash: `0x${'00'.repeat(32)}`,
    sellerNonce: 1n,
    sellerDeadline: 0n,
    buyerNonce: 1n,
    buyerDeadline: 0n,
  };
  return { utility: 'biogas', agreement: terms, seller_signature: '0x', buyer_signature: '0x' };
}

const booked = (id: string): Payload<'agreementStatus'> => ({
  agreement_id: id,
  utility: 'biogas',
  at_ms: 0,
  state: 'submitted',
  tx_hash: `0x${'11'.repeat(32)}`,
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'eip-delivery-'));
  sent = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('delivery reports', () => {
  it('shares a counter first come first served, reports once booked, signed by the meter key', () => {
    const r = reporter();
    const first = agreement(1, 1000, 5_000n);
    const second = agreement(2, 1010, 5_000n);
    r.track(first, 'seller');
    r.track(second, 'seller');
    r.track(agreement(3, 1000, 1n), 'buyer'); // no import counter: not followed
    expect(r.tracked).toBe(2);
    r.measure('biogas', 'export', 100_000, 1_000_000); // the baseline
    r.measure('biogas', 'export', 103_000, 1_005_000); // only the first is in its window
    // 7,000 over 15 s: 2,000 fill the first; the second's window has 10 of those 15 s.
    r.measure('biogas', 'export', 110_000, 1_020_000);
    expect(sent).toHaveLength(0); // nothing booked yet
    const firstId = structHash('Agreement', first.agreement);
    const secondId = structHash('Agreement', second.agreement);
    r.status(booked(firstId));
    r.status(booked(secondId));
    const figures = sent.map((s) => [s.report.report.agreementId, s.report.report.delivered]);
    expect(figures).toEqual([
      [firstId, 5_000n],
      [secondId, 4_667n],
    ]);
    for (const { meter, report } of sent) {
      expect(meter).toBe('gas-out');
      expect(report.report.measuredAt).toBe(1020n);
      assertSignedBy(domain, 'DeliveryReport', report.report, report.signature, meterKey.address);
    }
  });

  it('goes on from where it was after a restart, and forgets settled agreements', () => {
    const r = reporter();
    const one = agreement(1, 1000, 10_000n);
    const id = structHash('Agreement', one.agreement);
    r.track(one, 'seller');
    r.status(booked(id));
    r.measure('biogas', 'export', 0, 1_000_000);
    r.measure('biogas', 'export', 4_000, 1_010_000);
    const again = reporter();
    // Past the window's end (1,100 s): the part up to the end counts, dated at the end.
    again.measure('biogas', 'export', 24_000, 1_200_000);
    expect(sent.map((s) => [s.report.report.delivered, s.report.report.seq])).toEqual([
      [4_000n, 1n],
      [10_000n, 2n],
    ]);
    expect(sent.map((s) => s.report.report.measuredAt)).toEqual([1010n, 1100n]);
    again.status({
      agreement_id: id,
      utility: 'biogas',
      at_ms: 0,
      state: 'settled',
      tx_hash: `0x${'22'.repeat(32)}`,
      paid: 0n,
      refunded: 0n,
    });
    expect(reporter().tracked).toBe(0);
  });

  it('refuses a damaged state file by name rather than forget agreements', () => {
    const file = join(dir, 'deliveries.json');
    writeFileSync(file, '{"agreements": [{"id": 1}], "counters": {}}');
    expect(() => reporter(file)).toThrow(/deliveries.json is damaged/);
  });
});
