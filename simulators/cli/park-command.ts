/**
 * `eip-sim park`: the whole park for one simulated day (see ../park/run-park.ts): progress on
 * stderr as it goes, the summary on stdout as tables or JSON, exit 1 when a stage failed.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Io } from '../../core/cli.js';
import { EipError } from '../../core/errors.js';
import { createLogger, silentLogger } from '../../core/logger.js';
import { textTable } from '../../core/text-table.js';
import { type ParkSummary, runPark } from '../park/run-park.js';
import { parseCount } from './numbers.js';

interface ParkFlags {
  readonly json?: boolean;
  readonly day: string;
  readonly dataDir?: string;
  readonly verbose?: boolean;
}

/** Set by the CLI's caller: a failed stage exits 1 after the summary is printed. */
export function addParkCommand(root: Command, io: Io, fail: (code: number) => void): void {
  root
    .command('park')
    .summary('run a whole park for one simulated day: gateway, chain, meters, three agents')
    .description(
      'Run the demo park on this machine: the gateway (MQTT broker, anvil with the market contracts, relay, delivery oracle), simulated Modbus meters and three edge agents (a biogas producer, a food factory that buys gas and electricity and sells heat, a CHP plant with electricity to spare and a heat deficit). One simulated day of readings, negotiations, agreements on chain, metered delivery, payment and refund; progress on stderr, a summary at the end. Exits 1 if any stage failed.',
    )
    .option('--json', 'print the summary as one JSON object')
    .option(
      '--day <seconds>',
      'real seconds the simulated day lasts (one step every 1/12 of it)',
      '60',
    )
    .option(
      '--data-dir <dir>',
      'keep the configs, chain and agent data here (default: a temporary folder)',
    )
    .option('--verbose', "also print every part's JSON log lines on stderr")
    .action(async (flags: ParkFlags) => {
      const dayS = parseCount(flags.day, '--day', 86_400);
      if (dayS < 24) {
        throw new EipError(
          'INVALID_ARGUMENT',
          `--day must be 24 seconds at least (got "${flags.day}")`,
          {
            details: { flag: '--day' },
          },
        );
      }
      const dataDir = flags.dataDir
        ? resolve(flags.dataDir)
        : mkdtempSync(join(tmpdir(), 'eip-park-'));
      const stepS = Math.max(2, Math.round(dayS / 12));
      const summary = await runPark({
        dataDir,
        dayS,
        timing: { stepS, deliveryS: stepS },
        graceS: 2,
        settleTimeoutS: 60,
        logger: flags.verbose
          ? createLogger({ name: 'eip-sim', destination: io.stderr })
          : silentLogger,
        progress: (line) => io.stderr.write(`${line}\n`),
      });
      io.stdout.write(flags.json ? `${JSON.stringify(summary, null, 2)}\n` : summaryText(summary));
      if (!summary.ok) fail(1);
    });
}

function summaryText(summary: ParkSummary): string {
  const agreements = textTable(
    [
      'utility',
      'seller',
      'buyer',
      'quantity',
      'unit price',
      'delivered',
      'paid',
      'refunded',
      'settled in',
    ],
    summary.agreements.map((a) => [
      a.utility,
      a.seller,
      a.buyer,
      `${a.quantity} ${a.unit}`,
      `${a.unit_price}`,
      `${a.delivered} ${a.unit}`,
      a.paid,
      a.refunded,
      a.transactions.settle ? `${a.transactions.settle.slice(0, 12)}…` : a.state,
    ]),
    ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'left'],
  );
  const percent = (rate: number | null) => (rate === null ? '-' : `${Math.round(rate * 100)} %`);
  const negotiations = textTable(
    ['utility', 'requests', 'agreed', 'failed', 'nobody answered', 'agreement rate', 'rounds'],
    Object.entries(summary.negotiations).map(([utility, c]) => [
      utility,
      `${c.requests}`,
      `${c.agreed}`,
      `${c.failed}`,
      `${c.unanswered}`,
      percent(c.agreementRate),
      c.meanRoundsToAgreement === null ? '-' : c.meanRoundsToAgreement.toFixed(1),
    ]),
    ['left', 'right', 'right', 'right', 'right', 'right', 'right'],
  );
  const stages = textTable(
    ['stage', 'result', 'detail'],
    summary.stages.map((s) => [s.stage, s.ok ? 'ok' : 'FAILED', s.detail]),
    ['left', 'left', 'left'],
  );
  return `\nAgreements (tokens; full hashes with --json)\n\n${agreements}\n\nNegotiations, as the agents reported them\n\n${negotiations}\n\nStages\n\n${stages}\n\nConfigs, chain and agent data: ${summary.data_dir}\n`;
}
