/**
 * Bilateral alternating offers over price and quantity at once.
 *
 * Time runs in rounds t = 0, 1, 2, ... In every round the opener moves, then the responder; both
 * evaluate their strategy at the same t, so each agent makes one offer per time step, as in
 * Fig. 6 of the seed paper. A move first considers the opponent's latest offer issue by issue and
 * accepts each issue whose value is at least as good as what the mover would offer next (its own
 * counter-offer at this step). Accepted issues are settled and stay fixed in every later offer;
 * the rest are countered. Once every issue is settled the negotiation ends in an agreement at
 * that round.
 *
 * An agent past its deadline on an open issue either breaks off (the default; the deal is worth
 * little to it now) or stands at its reserve. So with break-off, an issue is agreed if and only if
 * the two concession paths cross at a round no later than both agents' deadlines on it. Rounds are
 * whole steps: with a fractional dl an agent's last step is floor(dl), just short of rp, and with
 * dl < 1 it makes only its opening offer. When both only stand and still do not cross, the
 * negotiation ends without agreement.
 *
 * The engine is a pure function: the same setup gives the same transcript.
 */
import { EipError } from '../errors.js';
import type { Milli } from '../units.js';
import { ISSUES, type Issue, opponentOf, type Role } from './issues.js';
import { makeStance, type Stance } from './stance.js';
import type { Psi } from './strategy.js';

export type AfterDeadline = 'break-off' | 'stand';

export interface AgentSpec {
  readonly name: string;
  readonly psi: Readonly<Record<Issue, Psi>>;
  readonly afterDeadline?: AfterDeadline;
}

export interface NegotiationSetup {
  readonly seller: AgentSpec;
  readonly buyer: AgentSpec;
  /** Smallest step of each issue, in thousandths (the utility's price and quantity ticks). */
  readonly ticks: Readonly<Record<Issue, Milli>>;
  /** Who makes the first offer; the seed's Prosumer 0, the seller, does. */
  readonly opener?: Role;
  /** A hard bound on rounds, whatever the deadlines say. */
  readonly maxRounds?: number;
}

export const DEFAULT_MAX_ROUNDS = 10_000;
/** The transcript grows with every round; beyond this a negotiation is a mistake, not a plan. */
export const MAX_ROUNDS_LIMIT = 100_000;

export type Bundle = Readonly<Record<Issue, Milli>>;

export interface Move extends Bundle {
  readonly round: number;
  readonly by: Role;
  /** 'accept' ends the negotiation; its values are the agreement. */
  readonly kind: 'offer' | 'accept';
  /** Issues this move accepted from the opponent's latest offer. */
  readonly accepted: readonly Issue[];
}

/** When, by whom and at what value an issue was settled. */
export interface Settlement {
  readonly round: number;
  readonly by: Role;
  readonly value: Milli;
}

export interface Agreement extends Bundle {
  readonly kind: 'agreement';
  /** The round at which the last issue was settled. */
  readonly round: number;
  readonly settled: Readonly<Record<Issue, Settlement>>;
  readonly transcript: readonly Move[];
}

export type NoAgreementReason =
  /** An agent passed its deadline with an issue still open and broke off. */
  | 'deadline'
  /** Both agents stood at their reserves past every deadline without crossing. */
  | 'reserves-apart'
  /** maxRounds ran out first. */
  | 'round-limit';

export interface NoAgreement {
  readonly kind: 'no-agreement';
  readonly reason: NoAgreementReason;
  readonly brokenOffBy: Role | null;
  /** The last round played, or for a break-off the round at whose start it happened. */
  readonly round: number;
  readonly settled: Readonly<Partial<Record<Issue, Settlement>>>;
  readonly transcript: readonly Move[];
}

export type Outcome = Agreement | NoAgreement;

/** One side of a negotiation: its stance on each issue and what it does past its deadline. */
export interface Party {
  readonly role: Role;
  readonly stances: Readonly<Record<Issue, Stance>>;
  readonly afterDeadline: AfterDeadline;
}

export function makeParty(role: Role, spec: AgentSpec, ticks: NegotiationSetup['ticks']): Party {
  return {
    role,
    stances: {
      price: makeStance(role, 'price', spec.psi.price, ticks.price),
      quantity: makeStance(role, 'quantity', spec.psi.quantity, ticks.quantity),
    },
    afterDeadline: spec.afterDeadline ?? 'break-off',
  };
}

/** Whether `party` breaks off at the start of `round`: past its deadline with an issue open. */
export function breaksOff(
  party: Party,
  round: number,
  settled: Readonly<Partial<Record<Issue, Settlement>>>,
): boolean {
  return (
    party.afterDeadline === 'break-off' &&
    ISSUES.some((issue) => settled[issue] === undefined && round > party.stances[issue].psi.dl)
  );
}

export interface Step {
  /** What the mover sends: settled values and its offers on the rest. */
  readonly bundle: Bundle;
  /** Issues it settled by accepting the opponent's latest value. */
  readonly accepted: readonly Issue[];
  /** Every issue is now settled: the move is an acceptance and the bundle is the agreement. */
  readonly finished: boolean;
}

/**
 * One move, the unit both the in-process engine and two agents talking over MQTT play: consider
 * the opponent's latest offer issue by issue, accept what is at least as good as the mover's own
 * offer at this round, counter the rest. `settled` is updated in place with what is accepted.
 */
export function move(
  mover: Party,
  round: number,
  theirs: Bundle | null,
  settled: Partial<Record<Issue, Settlement>>,
): Step {
  const accepted: Issue[] = [];
  const bundle = { price: 0, quantity: 0 } as Record<Issue, Milli>;
  for (const issue of ISSUES) {
    const done = settled[issue];
    if (done !== undefined) {
      bundle[issue] = done.value;
      continue;
    }
    const stance = mover.stances[issue];
    const own = stance.offerAt(round);
    if (theirs !== null && stance.accepts(theirs[issue], own)) {
      settled[issue] = { round, by: mover.role, value: theirs[issue] };
      accepted.push(issue);
      bundle[issue] = theirs[issue];
    } else {
      bundle[issue] = own;
    }
  }
  return { bundle, accepted, finished: ISSUES.every((issue) => settled[issue] !== undefined) };
}

export function negotiate(setup: NegotiationSetup): Outcome {
  const maxRounds = setup.maxRounds ?? DEFAULT_MAX_ROUNDS;
  if (!Number.isSafeInteger(maxRounds) || maxRounds < 1 || maxRounds > MAX_ROUNDS_LIMIT) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `maxRounds must be a whole number from 1 to ${MAX_ROUNDS_LIMIT} (got ${maxRounds})`,
    );
  }
  for (const [issue, tick] of Object.entries(setup.ticks)) {
    if (!Number.isSafeInteger(tick) || tick <= 0) {
      throw new EipError('INVALID_ARGUMENT', `${issue} tick must be > 0 (got ${tick})`);
    }
  }
  const parties: Record<Role, Party> = {
    seller: makeParty('seller', setup.seller, setup.ticks),
    buyer: makeParty('buyer', setup.buyer, setup.ticks),
  };
  const opener = setup.opener ?? 'seller';
  const order = [parties[opener], parties[opponentOf(opener)]] as const;

  const transcript: Move[] = [];
  const latest: Record<Role, Bundle | null> = { seller: null, buyer: null };
  const settled: Partial<Record<Issue, Settlement>> = {};
  const isOpen = (issue: Issue) => settled[issue] === undefined;
  const ended = (
    reason: NoAgreementReason,
    brokenOffBy: Role | null,
    round: number,
  ): NoAgreement => ({
    kind: 'no-agreement',
    reason,
    brokenOffBy,
    round,
    settled,
    transcript,
  });

  for (let round = 0; ; round++) {
    const open = ISSUES.filter(isOpen);
    // Deadlines are checked for both parties before anyone moves: an agent that breaks off also
    // withdraws its standing offer, so nobody can accept it after that agent's deadline.
    for (const p of order) {
      if (breaksOff(p, round, settled)) return ended('deadline', p.role, round);
    }
    // Past every open deadline all offers are constant; one more round has tried every pair of
    // them (acceptance is not symmetric on quantity, so the opener needs its turn), and beyond
    // it nothing can change.
    const lastDeadline = Math.max(
      ...order.flatMap((p) => open.map((issue) => p.stances[issue].psi.dl)),
    );
    if (round > Math.ceil(lastDeadline) + 1) return ended('reserves-apart', null, round - 1);
    if (round >= maxRounds) return ended('round-limit', null, round - 1);

    for (const mover of order) {
      const step = move(mover, round, latest[opponentOf(mover.role)], settled);
      transcript.push({
        round,
        by: mover.role,
        kind: step.finished ? 'accept' : 'offer',
        accepted: step.accepted,
        ...step.bundle,
      });
      if (step.finished) return agreement(round, settled as Record<Issue, Settlement>, transcript);
      latest[mover.role] = step.bundle;
    }
  }
}

function agreement(
  round: number,
  settled: Record<Issue, Settlement>,
  transcript: Move[],
): Agreement {
  return {
    kind: 'agreement',
    round,
    price: settled.price.value,
    quantity: settled.quantity.value,
    settled,
    transcript,
  };
}
