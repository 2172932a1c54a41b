/**
 * `eip-sim train` and `eip-sim evaluate`: the market simulation of ../market, from the command
 * line. Progress on stderr as it goes, the result on stdout (tables, or JSON with --json), the
 * policy file and the report written whole or not at all.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Io } from '../../core/cli.js';
import { LearnedPolicy, parsePolicyFile } from '../../core/policy/learned.js';
import { textTable } from '../../core/text-table.js';
import { UTILITIES, UTILITY_IDS } from '../../core/utilities.js';
import { type Evaluation, evaluate } from '../market/evaluate.js';
import { goals, parkTable, tokens, verdict } from '../market/figures.js';
import { comparedPolicies } from '../market/policies.js';
import { reportHtml } from '../market/report.js';
import { loadScenario } from '../market/scenario.js';
import { DEFAULT_TRAINING, type EpisodeReport, train } from '../market/train.js';
import { parseCount } from './numbers.js';
import { readText, writeAtomically } from './output.js';

interface TrainFlags {
  readonly scenario: string;
  readonly out: string;
  readonly episodes: string;
  readonly seed: string;
  readonly json?: boolean;
}

interface EvaluateFlags {
  readonly scenario: string;
  readonly policy?: string;
  readonly seeds: string;
  readonly seed: string;
  readonly json?: boolean;
  readonly report?: string;
}

/** Held-out days: far from training's (1 up) and validation's (900,001 up) seeds. */
const EVALUATION_SEED = 1_000_001;

const seconds = (ms: number) =>
  ms < 60_000 ? `${Math.round(ms / 1000)} s` : `${(ms / 60_000).toFixed(1)} min`;

function progressLine(r: EpisodeReport): string {
  const left = (r.elapsedMs / r.episode) * (r.episodes - r.episode);
  const parts = [
    `episode ${String(r.episode).padStart(String(r.episodes).length)}/${r.episodes}`,
    `epsilon ${r.epsilon.toFixed(2)}`,
    `day's gain ${tokens(r.gain)} tokens`,
    `${r.states} states`,
  ];
  if (r.validation) {
    parts.push(
      `validation ${tokens(r.validation.gain)} (worst prosumer ${tokens(r.validation.worstProsumer)})${r.validation.best ? ' best so far' : ''}`,
    );
  }
  parts.push(
    `${seconds(r.elapsedMs)}${r.episode < r.episodes ? `, about ${seconds(left)} left` : ''}`,
  );
  return parts.join('  ');
}

export function addTrainCommand(root: Command, io: Io): void {
  root
    .command('train')
    .summary("learn the agents' policy in the simulated park (Q-learning)")
    .description(
      "Learn the policy the edge agents run (seed section 4.2): every prosumer of the scenario learns at once, day after simulated day, which of wait, trade with the provider, or negotiate with psi from a grid gains most in each context (its balance and store, the time before it must settle, the provider's spread, recent prices, the counterparts seen). Every 10 days the greedy policy is tried on validation days and the best one kept; it is written to --out, for an edge agent's `policy: { type: learned, file: ... }` and for `eip-sim evaluate --policy`.",
    )
    .requiredOption('--scenario <file.yaml>', 'the park to learn in (see simulators/scenarios/)')
    .requiredOption('--out <policy.json>', 'where to write the policy learned')
    .option('--episodes <n>', 'simulated days to learn from', '200')
    .option('--seed <n>', "the first day's seed: the same seed learns the same policy", '1')
    .option('--json', 'print the result as one JSON object')
    .action((flags: TrainFlags) => {
      const episodes = parseCount(flags.episodes, '--episodes', 100_000);
      const seed = parseCount(flags.seed, '--seed', 2 ** 31);
      const scenario = loadScenario(flags.scenario);
      io.stderr.write(
        `eip-sim: learning in ${scenario.name} (${scenario.prosumers.length} prosumers, ${scenario.steps} steps a day) for ${episodes} days\n`,
      );
      const settings = { ...DEFAULT_TRAINING, episodes, seed };
      const trained = train(scenario, settings, (r) => {
        if (r.validation || r.episode === 1) io.stderr.write(`${progressLine(r)}\n`);
      });
      const file = trained.table.toFile(scenario.minTrade, {
        scenario: scenario.name,
        scenario_file: flags.scenario,
        episodes,
        seed,
        settings: { ...settings, validationSeeds: [...settings.validationSeeds] },
        kept_episode: trained.episode,
        kept_after_s: Math.round(trained.elapsedMs / 100) / 10,
        validation: trained.validation,
      });
      writeAtomically(flags.out, `${JSON.stringify(file)}\n`, '--out');
      const summary = {
        out: flags.out,
        episodes,
        kept: {
          episode: trained.episode,
          after_s: trained.elapsedMs / 1000,
          validation_gain: trained.validation.gain,
          worst_prosumer: trained.validation.worstProsumer,
        },
        states: trained.table.size,
      };
      io.stdout.write(
        flags.json
          ? `${JSON.stringify(summary, null, 2)}\n`
          : `${flags.out}: the policy of day ${trained.episode} of ${episodes} (reached after ${seconds(trained.elapsedMs)}), the best on the validation days: ${tokens(trained.validation.gain)} tokens above the provider alone, worst prosumer ${tokens(trained.validation.worstProsumer)}; ${trained.table.size} states\n`,
      );
    });
}

function evaluationText(e: Evaluation): string {
  const summary = parkTable(e);
  const park = textTable(summary.head, summary.rows, [
    'left',
    ...summary.head.slice(1).map(() => 'right' as const),
  ]);
  const volumes = textTable(
    ['policy', ...UTILITY_IDS.map((u) => `${u} (${UTILITIES[u].unit})`)],
    e.policies.map((p) => [p.policy, ...UTILITY_IDS.map((u) => tokens(p.park.peerVolume[u] ?? 0))]),
    ['left', ...UTILITY_IDS.map(() => 'right' as const)],
  );
  const ids = e.policies[0]?.prosumers.map((p) => p.id) ?? [];
  const prosumers = textTable(
    ['prosumer', ...e.policies.map((p) => p.policy)],
    ids.map((id, i) => [
      id,
      ...e.policies.map((p) => tokens(p.prosumers[i]?.profitVsProvider ?? 0)),
    ]),
    ['left', ...e.policies.map(() => 'right' as const)],
  );
  return [
    `${e.scenario}: ${e.prosumers} prosumers, ${e.seeds.length} days (seeds ${e.seeds[0]} to ${e.seeds.at(-1)}), tokens against trading with the provider alone`,
    '',
    park,
    '',
    'Traded between peers',
    '',
    volumes,
    '',
    'Profit against the provider alone, per prosumer',
    '',
    prosumers,
    '',
    verdict(e).join(' '),
    '',
  ].join('\n');
}

export function addEvaluateCommand(root: Command, io: Io): void {
  root
    .command('evaluate')
    .summary('compare the policies on the same simulated days: profit, agreements, their quality')
    .description(
      "Play the same held-out days of the scenario under each policy: the provider alone, fixed psi (the seed's Table 1 through the rule-based policy), random, and with --policy the learned one. Per prosumer and for the park: profit against the provider alone, volume traded with peers, agreement rate, rounds to agreement, and the quality of the agreements (distance to the Pareto frontier, Nash product, fairness of the split). --report DIR writes an HTML page with the plots.",
    )
    .requiredOption('--scenario <file.yaml>', 'the park (see simulators/scenarios/)')
    .option('--policy <policy.json>', 'a policy from eip-sim train, compared with the baselines')
    .option('--seeds <n>', 'how many days', '5')
    .option(
      '--seed <n>',
      "the first day's seed (held out: training never plays it)",
      String(EVALUATION_SEED),
    )
    .option('--json', 'print the result as one JSON object')
    .option('--report <dir>', 'write an HTML report with plots to DIR/index.html')
    .action((flags: EvaluateFlags) => {
      const days = parseCount(flags.seeds, '--seeds', 1000);
      const first = parseCount(flags.seed, '--seed', 2 ** 31);
      const scenario = loadScenario(flags.scenario);
      const learned =
        flags.policy === undefined
          ? null
          : LearnedPolicy.fromFile(
              parsePolicyFile(readText(flags.policy, '--policy'), flags.policy),
            );
      if (learned && learned.minTrade !== scenario.minTrade) {
        io.stderr.write(
          `eip-sim: note: the policy was learned with min_trade ${learned.minTrade / 1000}, the scenario has ${scenario.minTrade / 1000}; the policy's own is used\n`,
        );
      }
      const seeds = Array.from({ length: days }, (_, i) => first + i);
      io.stderr.write(
        `eip-sim: ${scenario.name}, ${scenario.prosumers.length} prosumers, ${days} days under each policy\n`,
      );
      const evaluation = evaluate(scenario, comparedPolicies(scenario, learned), seeds, (name, s) =>
        io.stderr.write(`  ${name}: ${days} days in ${s.toFixed(1)} s\n`),
      );
      if (flags.report !== undefined) {
        mkdirSync(flags.report, { recursive: true });
        const page = join(flags.report, 'index.html');
        writeAtomically(page, reportHtml(evaluation, scenario), '--report');
        io.stderr.write(`eip-sim: report written to ${page}\n`);
      }
      io.stdout.write(
        flags.json
          ? `${JSON.stringify({ ...evaluation, goals: goals(evaluation) }, null, 2)}\n`
          : evaluationText(evaluation),
      );
    });
}
