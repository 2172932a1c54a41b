/**
 * Every negotiation the park's agents report, agreed or not: the chain holds only those that
 * ended in an agreement, so the agreement rate, the reasons negotiations fail and the requests
 * nobody answered come from here. Each party reports its own view once (through its durable
 * outbox, so a replay may repeat it); the log folds the two into one record per negotiation.
 * The reports themselves are not kept: InfluxDB has each one, when the gateway writes there.
 *
 * Reports are checked against the park directory and against each other: a plant reports only
 * under its own id (the broker's ACL and the topic binding see to that), its counterpart must be
 * a plant of the park, and the second party's report must name the first, for the same utility,
 * in the opposite role. So a plant cannot add to or rewrite another pair's negotiation; it can
 * report failed negotiations of its own that never happened, which only lowers its own figures
 * and the park's total (a limit noted in the API's README).
 *
 * Stored in a JsonStore (LevelDB, mirrored in memory) under the gateway's data directory, each
 * report synced before the gateway acknowledges it. A record holds about 300 bytes of heap (`npm
 * run bench -- negotiations`), and a busy park makes thousands a day, so the log keeps the
 * negotiations of the last `retainDays` (by when they ended) and forgets older ones, on disk too;
 * the counts, and so the agreement rate, are over what it keeps.
 */
import { EipError } from '../../core/errors.js';
import type { NEGOTIATION_OUTCOMES } from '../../core/messages/schemas.js';
import type { Payload } from '../../core/messages/topics.js';
import { UTILITY_IDS, type UtilityId } from '../../core/utilities.js';
import { type Cursor, newestFirst, type Page, type PageRequest } from '../indexer/page.js';
import type { ParkDirectory } from '../park.js';
import { JsonStore } from '../relay/store.js';

type Report = Payload<'negotiationOutcome'>;
export type Outcome = (typeof NEGOTIATION_OUTCOMES)[number];
export type BreakOffReason = NonNullable<Report['reason']>;

/** One negotiation as its parties' reports add up; what is stored. Parties are plant ids. */
export interface NegotiationRecord {
  readonly id: string;
  /** Order of the first report: the log's position, for paging. */
  readonly seq: number;
  readonly utility: UtilityId;
  readonly requester: string;
  /** Null when nobody answered the request. */
  readonly responder: string | null;
  readonly seller: string | null;
  readonly buyer: string | null;
  /**
   * Agreed when either party says so; else no-agreement when either does; proposed while the
   * only word is a proposal whose countersignature was not heard; no-counterpart for a request
   * nobody answered.
   */
  readonly outcome: Outcome;
  readonly reason: BreakOffReason | null;
  /** The party that broke off. */
  readonly endedBy: string | null;
  readonly rounds: number;
  readonly startedAtMs: number;
  readonly endedAtMs: number;
  /** What each party reported; null before it did (two fields, not a map: a fifth the memory). */
  readonly requesterSaid: Outcome | null;
  readonly responderSaid: Outcome | null;
}

/** What each party reported, by plant id. */
export function reportedBy(record: NegotiationRecord): Record<string, Outcome> {
  const reported: Record<string, Outcome> = {};
  if (record.requesterSaid !== null) reported[record.requester] = record.requesterSaid;
  if (record.responder !== null && record.responderSaid !== null) {
    reported[record.responder] = record.responderSaid;
  }
  return reported;
}

export interface NegotiationFilter {
  readonly utility?: UtilityId | undefined;
  /** Requester or responder, a plant id. */
  readonly party?: string | undefined;
  readonly outcome?: Outcome | undefined;
}

/** Counts of one utility's negotiations. */
export interface NegotiationCounts {
  /** Requests made: every negotiation, answered or not. */
  readonly requests: number;
  readonly unanswered: number;
  readonly agreed: number;
  readonly failed: number;
  /** Proposed, with no word yet of the countersignature. */
  readonly pending: number;
  /** agreed / (agreed + failed); null before any ended either way. */
  readonly agreementRate: number | null;
  /** Mean offer rounds of the agreed ones; null without any. */
  readonly meanRoundsToAgreement: number | null;
  /** Failed ones by the reason they broke off. */
  readonly reasons: Readonly<Partial<Record<BreakOffReason, number>>>;
}

export interface NegotiationLogOptions {
  /** Negotiations that ended longer ago are forgotten. */
  readonly retainDays: number;
  /** Unix ms. */
  readonly now?: () => number;
}

const RANK: Readonly<Record<Outcome, number>> = {
  agreed: 3,
  'no-agreement': 2,
  proposed: 1,
  'no-counterpart': 0,
};

const DAY_MS = 86_400_000;
/** Forgetting is looked at no more often than this: it walks the oldest records. */
const PRUNE_EVERY_MS = 60_000;

const positionOf = (record: NegotiationRecord): Cursor => ({ block: record.seq, logIndex: 0 });

export class NegotiationLog {
  /** By seq, ascending: the order `newestFirst` pages in; the same objects as the store's. */
  private ordered: NegotiationRecord[];
  /** Per negotiation, the report being taken: the next one waits for it. */
  private readonly queues = new Map<string, Promise<void>>();
  /**
   * The last number given. A report whose write fails leaves its number unused: a gap, which
   * paging does not mind, where reusing it could put two negotiations at one position.
   */
  private lastSeq: number;
  private readonly now: () => number;
  private prunedAt = Number.NEGATIVE_INFINITY;

  private constructor(
    private readonly store: JsonStore<NegotiationRecord>,
    private readonly directory: Pick<ParkDirectory, 'addressOf'>,
    private readonly options: NegotiationLogOptions,
    private readonly names: Interner,
  ) {
    this.now = options.now ?? Date.now;
    this.ordered = [...store.values()].sort((a, b) => a.seq - b.seq);
    this.lastSeq = this.ordered.at(-1)?.seq ?? 0;
  }

  static async open(
    dir: string,
    directory: Pick<ParkDirectory, 'addressOf'>,
    options: NegotiationLogOptions,
  ): Promise<NegotiationLog> {
    const names = new Interner();
    const store = await JsonStore.open(dir, (stored) => names.record(stored as NegotiationRecord));
    const log = new NegotiationLog(store, directory, options, names);
    await log.prune();
    return log;
  }

  /**
   * Takes `prosumer`'s report, on disk before it resolves. A repeat is ignored (a replayed
   * outbox), except that a proposal the party later heard countersigned becomes agreed. A report
   * that does not fit the park or the other party's report is refused as INVALID_MESSAGE, saying
   * why, and changes nothing.
   */
  record(prosumer: string, report: Report): Promise<NegotiationRecord> {
    const id = report.negotiation_id;
    // The reports of one negotiation are taken one after the other, so the second sees the
    // first; those of different negotiations go on together, and share the store's synced
    // batches (found by the bench: both parties' reports at once kept only the later one).
    const previous = this.queues.get(id) ?? Promise.resolve();
    const taken = previous.then(() => this.take(prosumer, report));
    const done = taken.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(id, done);
    void done.then(() => {
      if (this.queues.get(id) === done) this.queues.delete(id);
    });
    return taken;
  }

  get(id: string): NegotiationRecord | undefined {
    return this.store.get(id);
  }

  /** How far back it keeps negotiations, in days. */
  get retainDays(): number {
    return this.options.retainDays;
  }

  list(filter: NegotiationFilter, request: PageRequest): Page<NegotiationRecord> {
    return newestFirst(this.ordered, positionOf, (r) => matches(r, filter), request);
  }

  /** Per utility, the negotiations `party` took part in, or all of them. */
  counts(filter: Pick<NegotiationFilter, 'party'>): Record<UtilityId, NegotiationCounts> {
    const tallies = new Map<UtilityId, Tally>();
    for (const record of this.ordered) {
      if (!matches(record, filter)) continue;
      let tally = tallies.get(record.utility);
      if (tally === undefined) {
        tally = new Tally();
        tallies.set(record.utility, tally);
      }
      tally.add(record);
    }
    return Object.fromEntries(
      UTILITY_IDS.map((u) => [u, (tallies.get(u) ?? new Tally()).counts()]),
    ) as Record<UtilityId, NegotiationCounts>;
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private async take(prosumer: string, report: Report): Promise<NegotiationRecord> {
    const id = report.negotiation_id;
    const where = `negotiation ${id.slice(0, 10)}…`;
    if (report.prosumer !== prosumer) {
      refuse(`${where}: reported by ${prosumer} for ${report.prosumer}`);
    }
    for (const plant of [prosumer, report.counterpart]) {
      if (plant !== null && this.directory.addressOf(plant) === undefined) {
        refuse(`${where}: ${plant} is not a plant of this park`);
      }
    }
    const known = this.store.get(id);
    // Numbered now, not from what is already kept: others may be on their way to the disk.
    const merged =
      known === undefined ? first(++this.lastSeq, report) : merge(where, known, report);
    // A repeat changes nothing, and is not written again.
    if (merged === known) return known;
    const record = this.names.record(merged);
    await this.store.put(id, record);
    this.place(record, known);
    if (this.now() - this.prunedAt >= PRUNE_EVERY_MS) await this.prune();
    return record;
  }

  /** Puts `record` where `known` was in `ordered`, or at the end when it is new. */
  private place(record: NegotiationRecord, known: NegotiationRecord | undefined): void {
    if (known === undefined) {
      this.ordered.push(record);
      return;
    }
    const at = this.indexOf(known.seq);
    if (this.ordered[at] === known) this.ordered[at] = record;
  }

  /** Binary search: `ordered` is sorted by seq. */
  private indexOf(seq: number): number {
    let low = 0;
    let high = this.ordered.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.ordered[middle] as NegotiationRecord).seq < seq) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /**
   * Forgets the negotiations that ended before the retention window. They are oldest first in
   * `ordered`, near enough: a negotiation is numbered when it is first reported, when it ended.
   */
  private async prune(): Promise<void> {
    this.prunedAt = this.now();
    const horizon = this.prunedAt - this.options.retainDays * DAY_MS;
    let expired = 0;
    while (expired < this.ordered.length && (this.ordered[expired]?.endedAtMs ?? 0) < horizon) {
      expired++;
    }
    if (expired === 0) return;
    const gone = this.ordered.slice(0, expired);
    this.ordered = this.ordered.slice(expired);
    await Promise.all(gone.map((record) => this.store.delete(record.id)));
  }
}

/**
 * One copy of each plant id and word in memory: every record repeats a few of them (parties,
 * utility, outcome, reason), and a string parsed from JSON or MQTT is a copy of its own.
 */
class Interner {
  private readonly seen = new Map<string, string>();

  private one<T extends string | null>(text: T): T {
    if (text === null) return text;
    const kept = this.seen.get(text);
    if (kept !== undefined) return kept as T;
    this.seen.set(text, text);
    return text;
  }

  record(r: NegotiationRecord): NegotiationRecord {
    return {
      ...r,
      utility: this.one(r.utility),
      requester: this.one(r.requester),
      responder: this.one(r.responder),
      seller: this.one(r.seller),
      buyer: this.one(r.buyer),
      outcome: this.one(r.outcome),
      reason: this.one(r.reason),
      endedBy: this.one(r.endedBy),
      requesterSaid: this.one(r.requesterSaid),
      responderSaid: this.one(r.responderSaid),
    };
  }
}

function refuse(message: string): never {
  throw new EipError('INVALID_MESSAGE', message);
}

/** A negotiation as its first report tells it. */
function first(seq: number, report: Report): NegotiationRecord {
  const { prosumer, counterpart } = report;
  const failed = report.outcome === 'no-agreement';
  return {
    id: report.negotiation_id,
    seq,
    utility: report.utility,
    requester: report.requester ? prosumer : (counterpart as string),
    responder: report.requester ? counterpart : prosumer,
    seller: report.role === 'seller' ? prosumer : counterpart,
    buyer: report.role === 'buyer' ? prosumer : counterpart,
    outcome: report.outcome,
    reason: failed ? report.reason : null,
    endedBy: failed ? (report.ended_by === 'self' ? prosumer : counterpart) : null,
    rounds: report.rounds,
    startedAtMs: report.started_at_ms,
    endedAtMs: report.ended_at_ms,
    requesterSaid: report.requester ? report.outcome : null,
    responderSaid: report.requester ? null : report.outcome,
  };
}

/**
 * The negotiation with one more report: the other party's, which must be the other side of the
 * same negotiation, or a repeat of one already taken (`known` itself, unless a proposal became
 * an agreement).
 */
function merge(where: string, known: NegotiationRecord, report: Report): NegotiationRecord {
  const { prosumer } = report;
  const side = prosumer === known.requester ? 'requesterSaid' : 'responderSaid';
  const earlier = prosumer === known.requester || prosumer === known.responder ? known[side] : null;
  if (earlier !== null) {
    if (earlier !== 'proposed' || report.outcome !== 'agreed') return known;
    return withSaid(known, side, report.outcome);
  }
  const firstParty = known.requesterSaid !== null ? known.requester : (known.responder as string);
  const problem =
    known.responder === null || (prosumer !== known.requester && prosumer !== known.responder)
      ? `${firstParty} reported it with ${known.responder === null ? 'no counterpart' : firstParty === known.requester ? known.responder : known.requester}, not with ${prosumer}`
      : report.counterpart !== firstParty
        ? `${prosumer} names ${report.counterpart ?? 'no counterpart'}, but ${firstParty} reported it`
        : known.utility !== report.utility
          ? `it is ${known.utility}, not ${report.utility}`
          : known[report.role] !== prosumer
            ? `both parties say they were the ${report.role}`
            : (known.requester === prosumer) !== report.requester
              ? `both parties say they ${report.requester ? 'made' : 'answered'} the request`
              : null;
  if (problem !== null) refuse(`${where}: ${problem}`);
  // Who broke off knows why best: its own report, where there is one.
  const tells =
    report.outcome === 'no-agreement' && (known.reason === null || report.ended_by === 'self');
  return withSaid(
    {
      ...known,
      reason: tells ? report.reason : known.reason,
      endedBy: tells ? (report.ended_by === 'self' ? prosumer : firstParty) : known.endedBy,
      rounds: Math.max(known.rounds, report.rounds),
      startedAtMs: Math.min(known.startedAtMs, report.started_at_ms),
      endedAtMs: Math.max(known.endedAtMs, report.ended_at_ms),
    },
    side,
    report.outcome,
  );
}

/** `record` with one party's word, and the outcome both add up to: the higher in RANK. */
function withSaid(
  record: NegotiationRecord,
  side: 'requesterSaid' | 'responderSaid',
  said: Outcome,
): NegotiationRecord {
  const next = { ...record, [side]: said };
  const other = side === 'requesterSaid' ? next.responderSaid : next.requesterSaid;
  return { ...next, outcome: other !== null && RANK[other] > RANK[said] ? other : said };
}

function matches(record: NegotiationRecord, filter: NegotiationFilter): boolean {
  const { utility, party, outcome } = filter;
  return (
    (utility === undefined || record.utility === utility) &&
    (outcome === undefined || record.outcome === outcome) &&
    (party === undefined || record.requester === party || record.responder === party)
  );
}

class Tally {
  private requests = 0;
  private unanswered = 0;
  private agreed = 0;
  private failed = 0;
  private pending = 0;
  private agreedRounds = 0;
  private readonly reasons: Partial<Record<BreakOffReason, number>> = {};

  add(record: NegotiationRecord): void {
    this.requests++;
    if (record.outcome === 'no-counterpart') this.unanswered++;
    else if (record.outcome === 'proposed') this.pending++;
    else if (record.outcome === 'agreed') {
      this.agreed++;
      this.agreedRounds += record.rounds;
    } else {
      this.failed++;
      if (record.reason !== null) {
        this.reasons[record.reason] = (this.reasons[record.reason] ?? 0) + 1;
      }
    }
  }

  counts(): NegotiationCounts {
    const ended = this.agreed + this.failed;
    return {
      requests: this.requests,
      unanswered: this.unanswered,
      agreed: this.agreed,
      failed: this.failed,
      pending: this.pending,
      agreementRate: ended === 0 ? null : this.agreed / ended,
      meanRoundsToAgreement: this.agreed === 0 ? null : this.agreedRounds / this.agreed,
      reasons: { ...this.reasons },
    };
  }
}
