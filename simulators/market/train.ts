/**
 * Learning the policy (seed section 4.2): tabular Q-learning in the simulated park, every
 * prosumer learning at once into one shared table (each meets the others' current policies, as it
 * would in the park), episode after episode, each a simulated day on a seed of its own.
 *
 * Each prosumer's decision on each utility is a step of its own chain: the value of the action
 * taken moves toward the gain that followed it until its next decision, plus the discounted value
 * of that next state (Q(s,a) += alpha (r + gamma max Q(s',.) - Q(s,a))). Actions are chosen
 * epsilon-greedily, epsilon falling linearly over the episodes. A state's values start at 0 with
 * the provider winning ties, so an untrained agent trades with the provider: it starts from the
 * outside option and learns what beats it.
 */

import {
  ACTION_COUNT,
  actionOf,
  describeAction,
  PROVIDER,
  PROVIDER_HALF,
} from '../../core/policy/actions.js';
import { choicesOf, LearnedPolicy, QTable, TRADE_ACTIONS } from '../../core/policy/learned.js';
import type { Action, Observation } from '../../core/policy/policy.js';
import { respondAsDecided } from '../../core/policy/policy.js';
import type { Milli } from '../../core/units.js';
import { below, random } from '../random.js';
import { type DayResult, type SimPolicy, simulateDay } from './park-sim.js';
import type { ParkScenario } from './scenario.js';

export interface TrainSettings {
  readonly episodes: number;
  /** Episode e plays the day of seed `seed + e`. */
  readonly seed: number;
  readonly alpha: number;
  readonly gamma: number;
  readonly epsilonStart: number;
  readonly epsilonEnd: number;
  /**
   * What a negotiation is first thought worth in a state never met, tokens. Without it nobody
   * negotiates at first (the provider wins ties), so nobody finds a counterpart either, and
   * negotiating never looks worth learning: optimism gets the market going.
   */
  readonly optimism: number;
  /**
   * An action tried fewer times than this in a state keeps no value in the policy file: its value
   * is still mostly the optimism it started with, and the trained agent must not rely on it.
   */
  readonly minVisits: number;
  /**
   * Every this many episodes the greedy policy is tried on the validation days (seeds of their
   * own, met neither in training nor in the evaluation), and the best so far kept: learners that
   * learn from each other at once do not improve steadily, and the last table is not always the
   * best one.
   */
  readonly validateEvery: number;
  readonly validationSeeds: readonly number[];
}

/**
 * Defaults, as measured on the scenarios in simulators/scenarios. gamma 0: each decision is judged
 * by what it gained until the next one. With a longer horizon (0.9) the value of what follows a
 * decision, which for a plant without a store is the same whatever it chose, drowned the
 * differences between actions in noise: the greedy policy swung from one validation to the next
 * (78,000 to 543,000 tokens), where with 0 it improved steadily.
 */
export const DEFAULT_TRAINING: Omit<TrainSettings, 'episodes' | 'seed'> = {
  alpha: 0.1,
  gamma: 0,
  epsilonStart: 0.3,
  epsilonEnd: 0,
  optimism: 50,
  minVisits: 20,
  validateEvery: 10,
  validationSeeds: [900_001, 900_002],
};

export interface EpisodeReport {
  readonly episode: number;
  readonly episodes: number;
  readonly epsilon: number;
  /** The park's gain against the provider alone this day, tokens (exploration included). */
  readonly gain: number;
  /** States the table has values for. */
  readonly states: number;
  readonly elapsedMs: number;
  /** When the policy was tried this episode: its greedy result on the validation days. */
  readonly validation?: Validation;
}

/** The greedy policy on the validation days. */
export interface Validation {
  /** The park's gain against the provider alone, summed over the days. */
  readonly gain: number;
  /** The lowest gain of any prosumer on any of them: below 0, someone did worse. */
  readonly worstProsumer: number;
  /** Whether it is the best so far: the one `train` returns, unless a later one beats it. */
  readonly best: boolean;
}

export interface Trained {
  readonly table: QTable;
  /** When the returned table was reached: the episode, and the time since training began. */
  readonly episode: number;
  readonly elapsedMs: number;
  readonly validation: Validation;
}

/** One prosumer's utility as a learner: it decides epsilon-greedily and updates the table. */
class Learner implements SimPolicy {
  private last: { readonly state: number; readonly action: number } | null = null;
  private pending = 0;

  constructor(
    private readonly table: QTable,
    private readonly minTrade: Milli,
    private readonly settings: TrainSettings,
    private readonly epsilon: number,
    private readonly uniform: () => number,
    private readonly visits: Visits,
  ) {}

  decide(o: Observation): Action {
    const { state, role } = choicesOf(o, this.minTrade);
    if (role === null) return { kind: 'wait', why: 'nothing to trade' };
    const fresh = !this.table.has(state);
    const values = this.table.row(state);
    if (fresh) values.fill(this.settings.optimism, PROVIDER + 1, PROVIDER_HALF);
    this.learn(Math.max(...TRADE_ACTIONS.map((a) => values[a] ?? 0)));
    const action =
      this.uniform() < this.epsilon
        ? (TRADE_ACTIONS[below(this.uniform, TRADE_ACTIONS.length)] as number)
        : this.table.best(state, TRADE_ACTIONS);
    this.last = { state, action };
    return actionOf(action, role, Math.abs(o.net) as Milli, o.utility, describeAction(action));
  }

  respond(o: Observation, request: Parameters<SimPolicy['respond']>[1]) {
    return respondAsDecided(this, o, request);
  }

  reward(tokens: number): void {
    this.pending += tokens;
  }

  end(): void {
    this.learn(0);
    this.last = null;
  }

  /** Moves the last decision's value toward what followed it and `next`, the value ahead. */
  private learn(next: number): void {
    if (this.last !== null) {
      const row = this.table.row(this.last.state);
      const old = row[this.last.action] ?? 0;
      const target = this.pending + this.settings.gamma * next;
      row[this.last.action] = old + this.settings.alpha * (target - old);
      this.visits.count(this.last.state, this.last.action);
    }
    this.pending = 0;
  }
}

/** How often each action was learned from in each state. */
class Visits {
  private readonly counts = new Map<number, Uint32Array>();

  count(state: number, action: number): void {
    let row = this.counts.get(state);
    if (row === undefined) {
      row = new Uint32Array(ACTION_COUNT);
      this.counts.set(state, row);
    }
    row[action] = (row[action] ?? 0) + 1;
  }

  /** A copy of `table` with the values learned from too few visits marked not learned (NaN). */
  pruned(table: QTable, minVisits: number): QTable {
    const copy = table.clone();
    for (const state of copy.states()) {
      const row = copy.row(state);
      const seen = this.counts.get(state);
      for (let action = 0; action < ACTION_COUNT; action++) {
        // The provider's value is its immediate gain, 0, known without trying it.
        if (action !== PROVIDER && (seen?.[action] ?? 0) < minVisits) row[action] = Number.NaN;
      }
    }
    return copy;
  }
}

export function epsilonAt(settings: TrainSettings, episode: number): number {
  const progress = settings.episodes <= 1 ? 1 : episode / (settings.episodes - 1);
  return settings.epsilonStart + (settings.epsilonEnd - settings.epsilonStart) * progress;
}

/** The park's gain against the provider alone: what every prosumer's trades gained or lost. */
export function parkGain(day: DayResult): number {
  return day.prosumers.reduce((sum, p) => sum + p.gain, 0);
}

/**
 * Trains a table on `scenario` for `settings.episodes` days; `onEpisode` hears each one (for
 * progress). Seeded: the same settings learn the same table.
 */
/**
 * Ranks validations: one that leaves no prosumer worse than the provider alone beats any that
 * does; among those alike, the higher park gain wins.
 */
function better(a: Omit<Validation, 'best'>, b: Omit<Validation, 'best'> | undefined): boolean {
  if (b === undefined) return true;
  const aFair = a.worstProsumer >= 0;
  if (aFair !== b.worstProsumer >= 0) return aFair;
  return aFair ? a.gain > b.gain : a.worstProsumer > b.worstProsumer;
}

/** The greedy policy of `table` on the validation days. */
export function validate(
  scenario: ParkScenario,
  table: QTable,
  seeds: readonly number[],
): Omit<Validation, 'best'> {
  const policy = new LearnedPolicy(table, scenario.minTrade);
  let gain = 0;
  let worstProsumer = Number.POSITIVE_INFINITY;
  for (const seed of seeds) {
    const day = simulateDay({ scenario, seed, policyOf: () => policy });
    gain += parkGain(day);
    for (const p of day.prosumers) worstProsumer = Math.min(worstProsumer, p.gain);
  }
  return { gain, worstProsumer };
}

/**
 * Trains a table on `scenario` for `settings.episodes` days, and returns the one that did best
 * on the validation days; `onEpisode` hears each day (for progress). Seeded: the same settings
 * learn the same table.
 */
export function train(
  scenario: ParkScenario,
  settings: TrainSettings,
  onEpisode: (report: EpisodeReport) => void = () => undefined,
): Trained {
  const table = new QTable();
  const visits = new Visits();
  const started = performance.now();
  let kept: Trained | undefined;
  for (let episode = 0; episode < settings.episodes; episode++) {
    const epsilon = epsilonAt(settings, episode);
    const uniform = random(settings.seed * 7919 + episode);
    const day = simulateDay({
      scenario,
      seed: settings.seed + episode,
      policyOf: () => new Learner(table, scenario.minTrade, settings, epsilon, uniform, visits),
    });
    const last = episode === settings.episodes - 1;
    let validation: Validation | undefined;
    if ((episode + 1) % settings.validateEvery === 0 || last) {
      // What the policy file would hold now: the values learned from enough visits.
      const candidate = visits.pruned(table, settings.minVisits);
      const tried = validate(scenario, candidate, settings.validationSeeds);
      validation = { ...tried, best: better(tried, kept?.validation) };
      if (validation.best) {
        kept = {
          table: candidate,
          episode: episode + 1,
          elapsedMs: performance.now() - started,
          validation,
        };
      }
    }
    onEpisode({
      episode: episode + 1,
      episodes: settings.episodes,
      epsilon,
      gain: parkGain(day),
      states: table.size,
      elapsedMs: performance.now() - started,
      ...(validation && { validation }),
    });
  }
  // The last episode is always validated, so a table is always kept.
  return kept as Trained;
}
