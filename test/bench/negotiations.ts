/**
 * The gateway's negotiation log (gateway/negotiations/log.ts) at a busy park's scale: 100,000
 * negotiations, each reported by both parties, about a month of 30 plants negotiating every few
 * minutes per utility. How fast reports are taken (each synced to LevelDB before it counts, one
 * at a time as a slow trickle and many at once as after an outage), how long a restart takes to
 * load them, what the API's summary and a page cost, and the heap they hold.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Payload } from '../../core/messages/topics.js';
import { textTable } from '../../core/text-table.js';
import { UTILITY_IDS } from '../../core/utilities.js';
import { NegotiationLog } from '../../gateway/negotiations/log.js';
import { ParkDirectory } from '../../gateway/park.js';

const NEGOTIATIONS = 100_000;
const ONE_AT_A_TIME = 2_000;
const PLANTS = 30;
const BATCH = 1_000;

type Report = Payload<'negotiationOutcome'>;

const plants = Array.from({ length: PLANTS }, (_, i) => `plant-${i}`);
const directory = new ParkDirectory(
  Object.fromEntries(
    plants.map((plant, i) => [
      plant,
      { address: `0x${(i + 1).toString(16).padStart(40, '0')}`, meters: {} },
    ]),
  ),
);

/** Negotiation `n`'s two reports: a seeded mix of agreed, failed and unanswered. */
function reportsOf(n: number): Report[] {
  const seller = plants[n % PLANTS] as string;
  const buyer =
    plants[(n * 7 + 1) % PLANTS] === seller
      ? plants[(n + 1) % PLANTS]
      : plants[(n * 7 + 1) % PLANTS];
  const id = `0x${n.toString(16).padStart(64, '0')}`;
  const kind = n % 10;
  const common = {
    negotiation_id: id,
    utility: UTILITY_IDS[n % 3] as Report['utility'],
    rounds: 5 + (n % 17),
    started_at_ms: 1_700_000_000_000 + n * 60_000,
    ended_at_ms: 1_700_000_000_000 + n * 60_000 + 4_000,
  };
  if (kind === 0) {
    return [
      {
        ...common,
        prosumer: seller,
        role: 'seller',
        requester: true,
        counterpart: null,
        outcome: 'no-counterpart',
        reason: null,
        ended_by: null,
        rounds: 0,
      },
    ];
  }
  const failed = kind <= 3;
  const outcome = failed ? ('no-agreement' as const) : ('agreed' as const);
  const reason = failed ? ('deadline' as const) : null;
  return [
    {
      ...common,
      prosumer: seller,
      role: 'seller',
      requester: true,
      counterpart: buyer as string,
      outcome,
      reason,
      ended_by: failed ? 'self' : null,
    },
    {
      ...common,
      prosumer: buyer as string,
      role: 'buyer',
      requester: false,
      counterpart: seller,
      outcome,
      reason,
      ended_by: failed ? 'counterpart' : null,
    },
  ];
}

/** The live heap: `npm run bench` runs node with --expose-gc, so garbage is not counted. */
const heapMb = () => {
  if (globalThis.gc === undefined)
    throw new Error('run with node --expose-gc (npm run bench does)');
  globalThis.gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

/** Runs `run` `times` times; ms per run, the median of five samples. */
function timed(times: number, run: () => unknown): number {
  const samples: number[] = [];
  for (let s = 0; s < 5; s++) {
    const start = performance.now();
    for (let i = 0; i < times; i++) run();
    samples.push((performance.now() - start) / times);
  }
  return samples.sort((a, b) => a - b)[2] ?? 0;
}

export async function negotiationsTable(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'eip-bench-negotiations-'));
  try {
    const before = heapMb();
    let log = await NegotiationLog.open(dir, directory, { retainDays: 3660 });
    let reports = 0;

    let start = performance.now();
    for (let n = 0; n < ONE_AT_A_TIME; n++) {
      for (const report of reportsOf(n)) {
        await log.record(report.prosumer, report);
        reports++;
      }
    }
    const trickle = (reports * 1000) / (performance.now() - start);

    start = performance.now();
    let burst = 0;
    for (let first = ONE_AT_A_TIME; first < NEGOTIATIONS; first += BATCH) {
      const batch: Promise<unknown>[] = [];
      for (let n = first; n < Math.min(first + BATCH, NEGOTIATIONS); n++) {
        for (const report of reportsOf(n)) {
          batch.push(log.record(report.prosumer, report));
          burst++;
        }
      }
      await Promise.all(batch);
    }
    const burstRate = (burst * 1000) / (performance.now() - start);
    const held = heapMb() - before;

    const summaryMs = timed(5, () => log.counts({}));
    const plantMs = timed(5, () => log.counts({ party: 'plant-3' }));
    const pageMs = timed(50, () => log.list({}, { limit: 50 }));
    const plantPageMs = timed(50, () => log.list({ party: 'plant-3' }, { limit: 50 }));
    const rate = log.counts({}).biogas.agreementRate ?? 0;
    await log.close();

    start = performance.now();
    log = await NegotiationLog.open(dir, directory, { retainDays: 3660 });
    const loadMs = performance.now() - start;
    const loaded = log.list({}, { limit: 1 }).items[0]?.seq;
    await log.close();
    if (loaded !== NEGOTIATIONS) throw new Error(`reloaded ${loaded} negotiations`);

    const perSecond = (x: number) => `${Math.round(x).toLocaleString('en-US')} reports/s`;
    const ms = (x: number) => `${x.toFixed(2)} ms`;
    return textTable(
      ['measure', 'value'],
      [
        [
          `reports taken one at a time, each synced (${reports.toLocaleString('en-US')})`,
          perSecond(trickle),
        ],
        [
          `reports taken ${BATCH} negotiations at a time (${burst.toLocaleString('en-US')})`,
          perSecond(burstRate),
        ],
        ['burst against one at a time', `${(burstRate / trickle).toFixed(1)}x`],
        [`restart: ${NEGOTIATIONS.toLocaleString('en-US')} negotiations loaded`, ms(loadMs)],
        ['summary, the park (GET /api/negotiations/summary)', ms(summaryMs)],
        ["summary, one plant's own", ms(plantMs)],
        ['a page of 50, newest', ms(pageMs)],
        ["a page of 50, one plant's", ms(plantPageMs)],
        [
          'heap held by the log',
          `${held.toFixed(0)} MB (${((held * 2 ** 20) / NEGOTIATIONS).toFixed(0)} B per negotiation)`,
        ],
        ['agreement rate of the mix (check: 6 of 9)', `${(rate * 100).toFixed(1)} %`],
      ],
      ['left', 'right'],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
