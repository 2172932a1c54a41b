/**
 * The gateway's time-series writer: every reading, balance, agreement status and delivery
 * confirmation goes to InfluxDB 1.x (the `influx` package, node-influx), through a disk spool.
 *
 * - A point is turned into its line (points.ts) and appended to the spool (spool.ts) at once; it
 *   leaves the spool only when InfluxDB has acknowledged it, when InfluxDB refused it, or when the
 *   spool is full and it is among the oldest. Each way is counted (`stats()`).
 * - Batches: a full batch (`maxBatch`, 5,000 by default) goes as soon as it is there; fewer go
 *   once the oldest has waited `flushMs` (1 s). One batch is out at a time, in spool order, at
 *   the points' own timestamps (precision ms), so a batch written late lands where it belongs.
 * - InfluxDB down (no answer, a 5xx, a timeout): the batch stays in the spool and is tried again
 *   after a back-off that doubles from `retryMs.first` to `retryMs.max`. One writer talks to one
 *   InfluxDB, so there is no herd to spread with jitter.
 * - InfluxDB refuses a batch (400, or any 4xx but those below): it is not sent again. InfluxDB
 *   1.x stores the valid points of a batch and refuses only the bad ones ("partial write: ...
 *   dropped=N", its HTTP write handler); it refuses a batch whole only when no line parses, or
 *   when one field has two types inside the batch, which this writer's schema rules out
 *   (points.ts). So there is nothing to bisect: the refused points are counted from the answer,
 *   the rest as written, and the reason logged.
 * - 401, 403, 404, 408 and 429 are about the request, not the points (ABOUT_THE_REQUEST): those
 *   batches are kept and tried again, after creating the database for a 404; dropping them
 *   would drop every point that follows.
 * - Open creates the database (CREATE DATABASE is idempotent). An InfluxDB that does not answer
 *   then does not fail the start: the writer logs it, spools, and creates the database once
 *   InfluxDB answers.
 */
import { InfluxDB, type IPoolOptions } from 'influx';
import { EipError, type ErrorCode, isEipError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import type { Payload } from '../../core/messages/topics.js';
import {
  agreementPoint,
  balancePoint,
  deliveryPoint,
  negotiationPoint,
  type Point,
  readingPoint,
  toLine,
} from './points.js';
import { Spool, type SpoolBatch } from './spool.js';

export const DEFAULT_MAX_SPOOL_BYTES = 256 * 1024 * 1024;
const MAX_REASON = 500;
/**
 * 4xx answers that are about the request, not its points: credentials (401), rights (403), a
 * database dropped behind the writer's back (404), a timeout or a rate limit in front of
 * InfluxDB (408, 429). Their batches are tried again; every other 4xx refuses the points.
 */
const ABOUT_THE_REQUEST = [401, 403, 404, 408, 429];
/** InfluxDB's own port, for a URL that names none. */
const INFLUXDB_PORT = 8086;

export interface InfluxWriterOptions {
  /** http(s)://[user:password@]host[:port][/path]; the port defaults to InfluxDB's 8086. */
  readonly url: string;
  readonly database: string;
  readonly spoolDir: string;
  readonly logger?: Logger;
  /** Points per write request, at most. */
  readonly maxBatch?: number;
  /** The longest a point waits for its batch to fill up, in ms. */
  readonly flushMs?: number;
  /** The bound on the spool's files: 256 MiB by default, at least 64 KiB. */
  readonly maxSpoolBytes?: number;
  /** Back-off between failed attempts, doubling from `first` to `max` ms. */
  readonly retryMs?: { readonly first: number; readonly max: number };
  /** How long a write or CREATE DATABASE may take before it counts as failed. */
  readonly requestTimeoutMs?: number;
  /** The clock for `lastError.at_ms`. */
  readonly now?: () => number;
}

export interface WriterStats {
  /** Points InfluxDB acknowledged, since open. */
  readonly written: number;
  /** Points in the spool, waiting for InfluxDB (those kept from before open included). */
  readonly spooled: number;
  readonly spooledBytes: number;
  /** Points dropped because the spool was full, since open. */
  readonly dropped: number;
  /** Points InfluxDB refused (unparsable, or a field type conflict), since open. */
  readonly rejected: number;
  readonly lastError: {
    readonly code: ErrorCode;
    readonly message: string;
    readonly at_ms: number;
  } | null;
}

type Backoff = NonNullable<IPoolOptions['backoff']>;
/**
 * node-influx takes a host out of its pool for a back-off after a connection error, answering
 * "No host available" meanwhile, from a timer that holds the process open. This writer keeps
 * its own back-off, so the pool's is always zero: every attempt reaches the network.
 */
const NO_POOL_BACKOFF: Backoff = {
  getDelay: () => 0,
  next: () => NO_POOL_BACKOFF,
  reset: () => NO_POOL_BACKOFF,
};

export class InfluxWriter {
  private written = 0;
  private rejected = 0;
  private lastError: WriterStats['lastError'] = null;
  private failures = 0;
  private needsDatabase = true;
  /** A batch of fewer than maxBatch may go: the flush timer fired, or flush() asks. */
  private due = false;
  /** The sending pass under way; it ends with the failure that stopped it, if one did. */
  private running: Promise<EipError | undefined> | undefined;
  private rerun = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  /** Set by close() once it has flushed: no pass or retry starts after that. */
  private stopped = false;

  private constructor(
    private readonly influx: InfluxDB,
    /** The URL without credentials, for messages. */
    private readonly where: string,
    private readonly database: string,
    private readonly spool: Spool,
    private readonly settings: {
      readonly maxBatch: number;
      readonly flushMs: number;
      readonly retryMs: { readonly first: number; readonly max: number };
    },
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  static async open(options: InfluxWriterOptions): Promise<InfluxWriter> {
    const maxBatch = positive('maxBatch', options.maxBatch ?? 5000);
    const flushMs = positive('flushMs', options.flushMs ?? 1000);
    const retryMs = options.retryMs ?? { first: 500, max: 30_000 };
    positive('retryMs.first', retryMs.first);
    positive('retryMs.max', retryMs.max);
    if (options.database === '')
      throw new EipError('INVALID_ARGUMENT', 'the database name is empty');
    const { influx, where } = connect(
      options.url,
      options.database,
      positive('requestTimeoutMs', options.requestTimeoutMs ?? 10_000),
    );
    const logger = options.logger ?? silentLogger;
    const writer = new InfluxWriter(
      influx,
      where,
      options.database,
      await Spool.open({
        dir: options.spoolDir,
        maxBytes: options.maxSpoolBytes ?? DEFAULT_MAX_SPOOL_BYTES,
        logger,
        onError: (error) => writer.noteError(error),
      }),
      { maxBatch, flushMs, retryMs },
      logger,
      options.now ?? Date.now,
    );
    const kept = writer.spool.depth;
    logger.info(
      { url: where, database: options.database, spooled: kept },
      `writing time series to InfluxDB at ${where}, database ${options.database}` +
        (kept > 0 ? `; ${kept} points kept from before go first` : ''),
    );
    try {
      await writer.ensureDatabase();
    } catch (error) {
      // Not fatal: the points wait in the spool, and the first attempt creates the database.
      writer.failed(error as EipError);
    }
    if (kept > 0) {
      writer.due = true;
      writer.kick();
    }
    return writer;
  }

  /** Spools a point; it reaches InfluxDB with its batch. Throws if the point breaks the schema. */
  write(point: Point): void {
    if (this.closing) throw this.closed();
    this.spool.append(toLine(point));
    if (this.spool.depth >= this.settings.maxBatch) this.kick();
    else this.armFlushTimer();
  }

  writeReading(reading: Payload<'meterReading'>): void {
    this.write(readingPoint(reading));
  }

  writeBalance(balance: Payload<'balance'>): void {
    this.write(balancePoint(balance));
  }

  writeAgreementStatus(status: Payload<'agreementStatus'>): void {
    this.write(agreementPoint(status));
  }

  writeDeliveryConfirmation(delivery: Payload<'deliveryConfirmation'>): void {
    this.write(deliveryPoint(delivery));
  }

  writeNegotiation(report: Payload<'negotiationOutcome'>): void {
    this.write(negotiationPoint(report));
  }

  /**
   * Sends every point written before the call now, without waiting for batches to fill or for
   * a back-off to end. Rejects with a retryable IO_ERROR if InfluxDB cannot take them; they stay
   * in the spool then, and the writer keeps trying.
   */
  async flush(): Promise<void> {
    if (this.stopped) throw this.closed();
    const target = this.spool.entered;
    while (this.spool.left < target) {
      // Let a pass under way finish: only a pass started here says how these points fared.
      while (this.running && this.spool.left < target) await this.running;
      if (this.spool.left >= target) return;
      this.cancelRetry();
      this.due = true;
      this.kick();
      const failure = await this.running;
      if (failure) throw failure;
    }
  }

  /** Flushes what InfluxDB takes, leaves the rest on disk for the next open, and stops. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.flushTimer);
      try {
        await this.flush();
      } catch {
        // Logged when the attempt failed; the points stay in the spool.
      }
      this.stopped = true;
      this.cancelRetry();
      await this.running;
      const left = this.spool.depth;
      await this.spool.close();
      if (left > 0) {
        this.logger.warn(
          { url: this.where, spooled: left },
          `time-series writer closed with ${left} points spooled; they are written after the next start`,
        );
      }
    })();
    return this.closing;
  }

  stats(): WriterStats {
    return {
      written: this.written,
      spooled: this.spool.depth,
      spooledBytes: this.spool.bytes,
      dropped: this.spool.dropped,
      rejected: this.rejected,
      lastError: this.lastError,
    };
  }

  private closed(): EipError {
    return new EipError('IO_ERROR', `the time-series writer for ${this.where} is closed`);
  }

  private armFlushTimer(): void {
    if (this.flushTimer !== undefined || this.closing) return;
    // Unref'd: close() is how points get out before an exit; a timer must not hold a process.
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.due = true;
      this.kick();
    }, this.settings.flushMs).unref();
  }

  private cancelRetry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Starts the sending loop, or has it look again when it is running. */
  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.running = this.pump().finally(() => {
      this.running = undefined;
      if (this.rerun) {
        this.rerun = false;
        this.kick();
      }
    });
  }

  /** Sends batches while there are full ones, or any when due; never rejects. */
  private async pump(): Promise<EipError | undefined> {
    const { maxBatch } = this.settings;
    while (
      this.retryTimer === undefined &&
      (this.spool.depth >= maxBatch || (this.due && this.spool.depth > 0))
    ) {
      try {
        const batch = await this.spool.peek(maxBatch);
        if (batch === undefined) break;
        if (batch.count < maxBatch) this.due = false;
        await this.send(batch);
        await this.spool.ack(batch);
      } catch (error) {
        const failure = this.failed(error as EipError);
        await this.spool.sync().catch((error: EipError) => this.noteError(error));
        this.scheduleRetry();
        return failure;
      }
    }
    if (this.spool.depth > 0) this.armFlushTimer();
    return undefined;
  }

  /** One attempt at a batch: resolves once InfluxDB has answered for its points, else throws. */
  private async send(batch: SpoolBatch): Promise<void> {
    if (this.needsDatabase) await this.ensureDatabase();
    const lines = batch.body.toString('utf8').split('\n', batch.count);
    try {
      // node-influx puts a point's measurement into the body as it is (writePoints escapes only
      // tags and fields), so a point that is a whole line, without tags, fields or time, sends
      // that line byte for byte: the spool's lines go out exactly as they were written. Posting
      // the spool's bytes with http.request instead was measured by hand against this (writer
      // alone, 200,000 readings, 8 runs each): about 120,000 points/s and 6-7 us of CPU per
      // point both ways, the gap within the noise; so writes stay with the influx package.
      await this.influx.writePoints(
        lines.map((line) => ({ measurement: line })),
        { database: this.database, precision: 'ms' },
      );
    } catch (error) {
      this.answered(error, batch.count);
      return;
    }
    this.recovered();
    this.written += batch.count;
  }

  /** What a failed write means: a refusal to count, or a failure to retry (thrown). */
  private answered(error: unknown, count: number): void {
    const status = statusOf(error);
    if (status === 404) this.needsDatabase = true;
    if (status === undefined || status >= 500 || ABOUT_THE_REQUEST.includes(status)) {
      throw this.unreachable(error, status);
    }
    this.recovered();
    const answer = (error as Error).message;
    const refused = refusedCount(answer, count);
    this.rejected += refused;
    this.written += count - refused;
    // The answer quotes every unparsable line: enough of it to see why, not all of it.
    const reason = answer.length > MAX_REASON ? `${answer.slice(0, MAX_REASON)}...` : answer;
    const eip = new EipError(
      'IO_ERROR',
      `InfluxDB at ${this.where} refused ${refused} of ${count} points: ${reason}`,
      {
        details: { url: this.where, status, refused, count },
      },
    );
    this.logger.error({ url: this.where, status, refused, count }, eip.message);
    this.noteError(eip);
  }

  private async ensureDatabase(): Promise<void> {
    try {
      await this.influx.createDatabase(this.database);
      this.needsDatabase = false;
    } catch (error) {
      const status = statusOf(error);
      if (status === undefined || status >= 500) throw this.unreachable(error, status);
      // A user with write rights only may not create databases (403): write and see.
      this.needsDatabase = false;
      // The message, not the error: node-influx's carries the whole HTTP request and response.
      this.logger.warn(
        { url: this.where, database: this.database, status, reason: (error as Error).message },
        `could not create database ${this.database} at ${this.where}; writing to it as it is`,
      );
    }
  }

  private unreachable(error: unknown, status: number | undefined): EipError {
    if (isEipError(error)) return error;
    const why =
      status === undefined
        ? (error as Error).message
        : `HTTP ${status} ${(error as Error).message}`;
    return new EipError(
      'IO_ERROR',
      `InfluxDB at ${this.where} cannot take points (${why}); they wait in the spool and are written when it can`,
      { retryable: true, cause: error, details: { url: this.where, status } },
    );
  }

  /** Records a failed attempt; the first of a run is a warning, the rest debug. */
  private failed(error: EipError): EipError {
    this.failures++;
    this.noteError(error);
    const context = {
      url: this.where,
      spooled: this.spool.depth,
      attempts: this.failures,
      err: error,
    };
    if (this.failures === 1) this.logger.warn(context, error.message);
    else this.logger.debug(context, error.message);
    return error;
  }

  private recovered(): void {
    if (this.failures > 0) {
      this.logger.info(
        { url: this.where, spooled: this.spool.depth, attempts: this.failures },
        `InfluxDB at ${this.where} takes points again after ${this.failures} failed attempts`,
      );
    }
    this.failures = 0;
  }

  private scheduleRetry(): void {
    const { first, max } = this.settings.retryMs;
    const delay = Math.min(max, first * 2 ** Math.min(this.failures - 1, 30));
    this.due = true;
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, delay).unref();
  }

  private noteError(error: EipError): void {
    this.lastError = { code: error.code, message: error.message, at_ms: this.now() };
  }
}

function positive(what: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `${what} must be a positive whole number (got ${value})`,
      {
        details: { [what]: value },
      },
    );
  }
  return value;
}

function connect(
  url: string,
  database: string,
  requestTimeout: number,
): { influx: InfluxDB; where: string } {
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (parsed?.protocol !== 'http:' && parsed?.protocol !== 'https:') {
    // Not the URL itself: it may hold a password.
    const got = parsed ? `a ${parsed.protocol} URL` : 'no URL';
    throw new EipError(
      'INVALID_ARGUMENT',
      `the InfluxDB URL must be http(s)://[user:password@]host[:port] (got ${got})`,
    );
  }
  const port = parsed.port === '' ? INFLUXDB_PORT : Number(parsed.port);
  const path = parsed.pathname === '/' ? '' : parsed.pathname;
  const influx = new InfluxDB({
    host: parsed.hostname,
    port,
    path,
    protocol: parsed.protocol === 'https:' ? 'https' : 'http',
    database,
    ...(parsed.username !== '' && {
      username: decodeURIComponent(parsed.username),
      password: decodeURIComponent(parsed.password),
    }),
    pool: { maxRetries: 0, requestTimeout, backoff: NO_POOL_BACKOFF },
  });
  return { influx, where: `${parsed.protocol}//${parsed.hostname}:${port}${path}` };
}

/** The HTTP status InfluxDB answered with (node-influx's RequestError carries the response). */
function statusOf(error: unknown): number | undefined {
  const status = (error as { res?: { statusCode?: unknown } }).res?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * How many points of a refused batch InfluxDB dropped. A partial write names the dropped ones
 * (`dropped=N`, for points its shard refused) and each line it could not parse ("unable to
 * parse '...': reason"), and stored the rest; any other refusal stored none.
 */
function refusedCount(reason: string, count: number): number {
  if (!reason.includes('partial write')) return count;
  const dropped = Number(/dropped=(\d+)/.exec(reason)?.[1] ?? 0);
  const unparsed = reason.split('unable to parse').length - 1;
  return Math.min(count, dropped + unparsed);
}
