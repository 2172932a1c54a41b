/**
 * Signs the plant's delivery reports: for each agreement it is party to, how much of the
 * contracted quantity has crossed the plant's connection to the park network inside the
 * provision window, cumulative, signed with the metering key (EIP-712 "DeliveryReport"). The
 * gateway posts them to the market, which pays the seller for what was delivered.
 *
 * A seller's deliveries are counted on its export counter, a buyer's on its import counter. What
 * a counter adds while several agreements of the same utility and side are in their windows goes
 * to them first come, first served (earliest window, then id), each up to its quantity; what it
 * adds outside every window belongs to no agreement.
 *
 * Reports start once the gateway has booked the agreement (any status but failed): earlier, it
 * could not place them. The tracked agreements are kept in a small JSON file, so a restarted
 * agent goes on counting from where it was.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { EipError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { type DigestSigner, signDigest } from '../../core/messages/ecdsa.js';
import {
  type Agreement,
  type MarketDomain,
  structHash,
  typedDataDigest,
} from '../../core/messages/eip712.js';
import { bytes32 } from '../../core/messages/schemas.js';
import type { Payload } from '../../core/messages/topics.js';
import type { Role } from '../../core/negotiation/issues.js';
import { UTILITY_IDS, type UtilityId } from '../../core/utilities.js';

export type Way = 'export' | 'import';

const count = z.number().int().nonnegative();
const trackedSchema = z.strictObject({
  id: bytes32,
  utility: z.enum(UTILITY_IDS),
  way: z.enum(['export', 'import']),
  quantity: count,
  startMs: count,
  endMs: count,
  booked: z.boolean(),
  delivered: count,
  /** Of the last report sent; 0 before the first. */
  seq: count,
  reported: count,
  measuredAtMs: count,
});
const stateSchema = z.strictObject({
  agreements: z.array(trackedSchema),
  /** Last value per utility and way (thousandths of the utility's unit) and when it was read. */
  counters: z.record(z.string(), z.strictObject({ value: count, atMs: count })),
});
type Tracked = z.output<typeof trackedSchema>;
type State = z.output<typeof stateSchema>;

export interface DeliveryReporterOptions {
  readonly signer: DigestSigner;
  readonly markets: Readonly<Partial<Record<UtilityId, MarketDomain>>>;
  /** The meter id whose counter measures `way` of `utility`, or undefined when none does. */
  readonly meterFor: (utility: UtilityId, way: Way) => string | undefined;
  /** Stores the report for the gateway (the agent's outbox). */
  readonly send: (meter: string, report: Payload<'deliveryReport'>) => Promise<void>;
  /** Where the tracked agreements are kept across restarts. */
  readonly file: string;
  readonly logger: Logger;
}

const WAY_OF: Readonly<Record<Role, Way>> = { seller: 'export', buyer: 'import' };

export class DeliveryReporter {
  private readonly state: State;
  readonly counters = { reports: 0 };

  constructor(private readonly options: DeliveryReporterOptions) {
    this.state = load(options.file);
  }

  /** Agreements being followed now. */
  get tracked(): number {
    return this.state.agreements.length;
  }

  /** A new agreement of this plant's, as `role`. Ignored when no counter measures its side. */
  track(signed: Payload<'agreement'>, role: Role): void {
    this.trackTerms(signed.utility, signed.agreement, role, false);
  }

  /**
   * An agreement known by its terms only: a trade with the provider, whose terms the contract
   * made and the gateway sent with its confirmation (so it is booked already).
   */
  trackTerms(utility: UtilityId, terms: Agreement, role: Role, booked: boolean): void {
    const way = WAY_OF[role];
    if (this.options.meterFor(utility, way) === undefined) return;
    const id = structHash('Agreement', terms);
    if (this.state.agreements.some((a) => a.id === id)) return;
    this.state.agreements.push({
      id,
      utility,
      way,
      quantity: Number(terms.quantity),
      startMs: Number(terms.deliveryStart) * 1000,
      endMs: Number(terms.deliveryEnd) * 1000,
      booked,
      delivered: 0,
      seq: 0,
      reported: 0,
      measuredAtMs: 0,
    });
    this.save();
  }

  /** What the gateway says of an agreement: booked, or finished (settled, failed). */
  status(status: Payload<'agreementStatus'>): void {
    const tracked = this.state.agreements.find((a) => a.id === status.agreement_id);
    if (!tracked) return;
    if (status.state === 'settled' || status.state === 'failed') {
      this.state.agreements = this.state.agreements.filter((a) => a !== tracked);
      this.save();
    } else if (!tracked.booked) {
      tracked.booked = true;
      this.save();
      void this.report(tracked);
    }
  }

  /**
   * A fresh value of the counter measuring `way` of `utility`, in thousandths of its unit. The
   * increase since the last value is taken as spread evenly over the time between the two
   * readings: the part inside an agreement's window counts for it (a window rarely starts or
   * ends on a reading), and that report is dated at the window's end if the reading came after.
   */
  measure(utility: UtilityId, way: Way, valueMilli: number, measuredAtMs: number): void {
    const key = `${utility}.${way}`;
    const last = this.state.counters[key];
    this.state.counters[key] = { value: valueMilli, atMs: measuredAtMs };
    // The first value is the baseline; a counter that went back (replaced meter) starts a new one.
    if (!last || valueMilli <= last.value || measuredAtMs <= last.atMs) {
      this.save();
      return;
    }
    const increase = valueMilli - last.value;
    const span = measuredAtMs - last.atMs;
    let available = increase;
    const open = this.state.agreements
      .filter((a) => a.utility === utility && a.way === way && a.delivered < a.quantity)
      .sort((a, b) => a.startMs - b.startMs || a.id.localeCompare(b.id));
    const changed: Tracked[] = [];
    for (const agreement of open) {
      const overlap =
        Math.min(measuredAtMs, agreement.endMs) - Math.max(last.atMs, agreement.startMs);
      if (overlap <= 0 || available <= 0) continue;
      const share = Math.min(
        Math.round((increase * overlap) / span),
        available,
        agreement.quantity - agreement.delivered,
      );
      agreement.delivered += share;
      agreement.measuredAtMs = Math.min(measuredAtMs, agreement.endMs);
      available -= share;
      changed.push(agreement);
    }
    this.save();
    for (const agreement of changed) void this.report(agreement);
  }

  private async report(agreement: Tracked): Promise<void> {
    if (!agreement.booked || agreement.delivered <= agreement.reported) return;
    const domain = this.options.markets[agreement.utility];
    const meter = this.options.meterFor(agreement.utility, agreement.way);
    if (!domain || meter === undefined) return;
    agreement.seq++;
    agreement.reported = agreement.delivered;
    const report = {
      agreementId: agreement.id,
      delivered: BigInt(agreement.delivered),
      measuredAt: BigInt(Math.floor(agreement.measuredAtMs / 1000)),
      seq: BigInt(agreement.seq),
    };
    const signature = signDigest(
      this.options.signer,
      typedDataDigest(domain, 'DeliveryReport', report),
    );
    this.save();
    this.counters.reports++;
    try {
      await this.options.send(meter, { utility: agreement.utility, meter, report, signature });
    } catch (error) {
      this.options.logger.error(
        { agreement: agreement.id, err: (error as Error).message },
        'delivery report not stored',
      );
    }
  }

  private save(): void {
    const temporary = `${this.options.file}.tmp`;
    writeFileSync(temporary, JSON.stringify(this.state));
    renameSync(temporary, this.options.file);
  }
}

function load(file: string): State {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { agreements: [], counters: {} };
    throw new EipError('IO_ERROR', `cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    return stateSchema.parse(JSON.parse(text));
  } catch (error) {
    // Never silently reset: the agreements in it would go unreported and their sellers unpaid.
    throw new EipError(
      'INVALID_MESSAGE',
      `${file} is damaged (${(error as Error).message.slice(0, 200)}); move it aside to start over`,
    );
  }
}
