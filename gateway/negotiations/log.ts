/**
 * Every negotiation the park's agents report, agreed or not: the chain holds only those that
 * ended in an agreement, so the agreement rate, the reasons negotiations fail and the requests
 * nobody answered come from here. Each party reports its own view once (through its durable
 * outbox, so a replay may repeat it); the log keeps each party's report and folds them into one
 * record per negotiation.
 *
 * Reports are checked against the park directory and against each other: a plant reports only
 * under its own id (the broker's ACL and the topic binding see to that), its counterpart must be
 * a plant of the park, and the second party's report must name the first, for the same utility,
 * in the opposite role. So a plant cannot add to or rewrite another pair's negotiation; it can
 * report failed negotiations of its own that never happened, which only lowers its own figures
 * and the park's total (a limit noted in the API's README).
 *
 * Stored in a JsonStore (LevelDB, mirrored in memory) under the gateway's data directory, each
 * report synced before the gateway acknowledges it.
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

/** What is stored per negotiation: the order it was first reported in, and each party's report. */
interface Stored {
  readonly seq: number;
  readonly reports: readonly Report[];
}

/** One negotiation as its parties' reports add up. Parties are plant ids. */
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
  /** What each party reported, by plant id. */
  readonly reported: Readonly<Record<string, Outcome>>;
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

const RANK: Readonly<Record<Outcome, number>> = {
  agreed: 3,
  'no-agreement': 2,
  proposed: 1,
  'no-counterpart': 0,
};

const positionOf = (record: NegotiationRecord): Cursor => ({ block: record.seq, logIndex: 0 });

export class NegotiationLog {
  private readonly records = new Map<string, NegotiationRecord>();
  /** By seq, ascending: the order `newestFirst` pages in. */
  private readonly ordered: NegotiationRecord[] = [];
  /** Where each negotiation is in `ordered`, to replace it when its second report comes. */
  private readonly positions = new Map<string, number>();

  private constructor(
    private readonly store: JsonStore<Stored>,
    private readonly directory: Pick<ParkDirectory, 'addressOf'>,
  ) {
    const stored = [...store.values()].sort((a, b) => a.seq - b.seq);
    for (const entry of stored) this.index(fold(entry));
  }

  static async open(
    dir: string,
    directory: Pick<ParkDirectory, 'addressOf'>,
  ): Promise<NegotiationLog> {
    return new NegotiationLog(await JsonStore.open<Stored>(dir), directory);
  }

  /**
   * Takes `prosumer`'s report, on disk before it resolves. A repeat is ignored (a replayed
   * outbox), except that a proposal the party later heard countersigned becomes agreed. A report
   * that does not fit the park or the other party's report is refused as INVALID_MESSAGE, saying
   * why, and changes nothing.
   */
  async record(prosumer: string, report: Report): Promise<NegotiationRecord> {
    const id = report.negotiation_id;
    const where = `negotiation ${id.slice(0, 10)}…`;
    if (report.prosumer !== prosumer)
      refuse(`${where}: reported by ${prosumer} for ${report.prosumer}`);
    for (const plant of [prosumer, report.counterpart]) {
      if (plant !== null && this.directory.addressOf(plant) === undefined) {
        refuse(`${where}: ${plant} is not a plant of this park`);
      }
    }
    const stored = this.store.get(id);
    const reports = stored?.reports ?? [];
    const earlier = reports.find((r) => r.prosumer === prosumer);
    let next: readonly Report[];
    if (earlier !== undefined) {
      const upgraded = earlier.outcome === 'proposed' && report.outcome === 'agreed';
      if (!upgraded) return this.records.get(id) as NegotiationRecord;
      next = reports.map((r) => (r === earlier ? report : r));
    } else {
      const other = reports[0];
      if (other !== undefined) checkPair(where, other, report);
      next = [...reports, report];
    }
    const entry: Stored = { seq: stored?.seq ?? this.nextSeq(), reports: next };
    await this.store.put(id, entry);
    const record = fold(entry);
    this.index(record);
    return record;
  }

  get(id: string): NegotiationRecord | undefined {
    return this.records.get(id);
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

  private nextSeq(): number {
    return (this.ordered.at(-1)?.seq ?? 0) + 1;
  }

  private index(record: NegotiationRecord): void {
    const at = this.positions.get(record.id);
    if (at === undefined) {
      this.positions.set(record.id, this.ordered.length);
      this.ordered.push(record);
    } else {
      this.ordered[at] = record;
    }
    this.records.set(record.id, record);
  }
}

function refuse(message: string): never {
  throw new EipError('INVALID_MESSAGE', message);
}

/** The second party's report must be the other side of the first's negotiation. */
function checkPair(where: string, first: Report, second: Report): void {
  const problem =
    first.counterpart !== second.prosumer
      ? `${first.prosumer} reported it with ${first.counterpart ?? 'no counterpart'}, not with ${second.prosumer}`
      : second.counterpart !== first.prosumer
        ? `${second.prosumer} names ${second.counterpart ?? 'no counterpart'}, but ${first.prosumer} reported it`
        : first.utility !== second.utility
          ? `it is ${first.utility}, not ${second.utility}`
          : first.role === second.role
            ? `both parties say they were the ${first.role}`
            : first.requester === second.requester
              ? `both parties say they ${first.requester ? 'made' : 'answered'} the request`
              : null;
  if (problem !== null) refuse(`${where}: ${problem}`);
}

function fold({ seq, reports }: Stored): NegotiationRecord {
  const first = reports[0] as Report;
  const other = first.counterpart;
  const [requester, responder] = first.requester
    ? [first.prosumer, other]
    : [other, first.prosumer];
  const [seller, buyer] =
    first.role === 'seller' ? [first.prosumer, other] : [other, first.prosumer];
  const outcome = reports.reduce<Outcome>(
    (best, r) => (RANK[r.outcome] > RANK[best] ? r.outcome : best),
    first.outcome,
  );
  // Who broke off knows why best: its own report, where there is one.
  const failed = reports
    .filter((r) => r.outcome === 'no-agreement')
    .sort((a, b) => Number(b.ended_by === 'self') - Number(a.ended_by === 'self'))[0];
  return {
    id: first.negotiation_id,
    seq,
    utility: first.utility,
    requester: requester as string,
    responder,
    seller,
    buyer,
    outcome,
    reason: outcome === 'no-agreement' ? (failed?.reason ?? null) : null,
    endedBy:
      outcome === 'no-agreement' && failed !== undefined
        ? failed.ended_by === 'self'
          ? failed.prosumer
          : failed.counterpart
        : null,
    rounds: Math.max(...reports.map((r) => r.rounds)),
    startedAtMs: Math.min(...reports.map((r) => r.started_at_ms)),
    endedAtMs: Math.max(...reports.map((r) => r.ended_at_ms)),
    reported: Object.fromEntries(reports.map((r) => [r.prosumer, r.outcome])),
  };
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
