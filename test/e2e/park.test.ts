/**
 * The README's first command, as a user runs it: the built `eip-sim park` brings up the gateway
 * (broker, anvil, markets, relay, oracle), simulated meters and three edge agents, runs a short
 * park day, and reports every agreement. It must exit 0, have settled every agreement, paid the
 * sellers and refunded at least one buyer, with paid + refunded equal to each escrow.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseUnits } from 'ethers';
import { describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '../../dist/simulators/cli/main.js');

describe('eip-sim park', () => {
  it('runs a park day end to end and prints the summary as JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eip-park-e2e-'));
    try {
      const run = spawnSync(
        process.execPath,
        [BIN, 'park', '--day', '30', '--json', '--data-dir', dir],
        {
          encoding: 'utf8',
          timeout: 150_000,
        },
      );
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/gateway up: broker mqtt:\/\/127\.0\.0\.1:\d+/);
      expect(run.stderr).toMatch(/settled, .* delivered/);
      const summary = JSON.parse(run.stdout);
      expect(summary.ok).toBe(true);
      expect(summary.stages.map((s: { stage: string; ok: boolean }) => [s.stage, s.ok])).toEqual([
        ['meter readings', true],
        ['negotiation', true],
        ['negotiation outcomes', true],
        ['agreements on chain', true],
        ['metered delivery', true],
        ['payment', true],
        ['refund', true],
      ]);
      // Every peer agreement on chain was reported agreed by the agents that made it.
      const peer = summary.agreements.filter(
        (a: { seller: string; buyer: string }) => a.seller !== 'provider' && a.buyer !== 'provider',
      ).length;
      const reported = Object.values(summary.negotiations) as { agreed: number }[];
      expect(reported.reduce((n, c) => n + c.agreed, 0)).toBeGreaterThanOrEqual(peer);
      const utilities = new Set(summary.agreements.map((a: { utility: string }) => a.utility));
      expect(utilities).toEqual(new Set(['biogas', 'electricity', 'heat']));
      for (const a of summary.agreements) {
        expect(a.state).toBe('settled');
        expect(a.transactions.open).toMatch(/^0x[0-9a-f]{64}$/);
        expect(a.transactions.settle).toMatch(/^0x[0-9a-f]{64}$/);
        expect(a.delivered).toBeLessThanOrEqual(a.quantity);
        // The seller is paid for what was delivered, the buyer refunded the rest of the escrow.
        const escrow = parseUnits(String(a.quantity), 3) * parseUnits(String(a.unit_price), 15);
        expect(parseUnits(a.paid, 18) + parseUnits(a.refunded, 18)).toBe(escrow);
      }
      expect(summary.agreements.some((a: { refunded: string }) => a.refunded !== '0.0')).toBe(true);
      // The configs an installer would write are kept.
      for (const file of ['gateway.yaml', 'credentials.yaml', 'biogas-plant.yaml']) {
        expect(existsSync(join(dir, file))).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
