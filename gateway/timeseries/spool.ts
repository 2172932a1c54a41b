/**
 * The time-series writer's disk spool: every point's line waits here, in arrival order, until
 * InfluxDB has it. The writer reads it from the front in batches, sends a batch's bytes as they
 * are, and acknowledges them; while InfluxDB is down the spool just grows, up to its bound.
 *
 * Append-only segment files, not LevelDB (classic-level, which the edge outbox uses): this is a
 * FIFO of ready-to-send text that is only ever appended to, read in order and dropped from the
 * front. Files do exactly that, with one write per group of lines, one read per batch and one
 * unlink per segment; LevelDB would add a key per point, a second copy in its log, and a
 * tombstone per acknowledged point to compact away. `head` on a segment shows what is waiting.
 *
 * Layout: `DIR/<seq>.lp` segments of lines (one point each, '\n'-terminated, seq zero-padded so
 * names sort), and `DIR/cursor`: the segment and byte offset of the first line InfluxDB does not
 * have yet, replaced atomically (write, rename) after each acknowledged batch.
 *
 * - Lines given in one tick are written together; a process crash loses none that reached the
 *   file. The file is synced when a write to InfluxDB fails (the lines will stay a while) and on
 *   close, so a power cut loses at most what arrived since the last failed attempt.
 * - A crash mid-write leaves a torn last line: it is cut off at open, and logged.
 * - A crash between a batch reaching InfluxDB and the cursor moving sends the batch again after
 *   the restart; InfluxDB stores it once (a point is its measurement, tags and time: points.ts).
 * - Bounded: `maxBytes` counts the segment files. Past it the oldest segment goes, its unsent
 *   lines counted as dropped and logged. Segments are an eighth of the bound (at most 16 MiB),
 *   so a full spool keeps at least seven eighths of it.
 */
import { type FileHandle, mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { EipError, isEipError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';

const MIN_SPOOL_BYTES = 64 * 1024;
const MAX_SEGMENT_BYTES = 16 * 1024 * 1024;
const NEWLINE = 0x0a;
const SEGMENT = /^(\d{16})\.lp$/;
const CURSOR = 'cursor';

export interface SpoolOptions {
  readonly dir: string;
  readonly maxBytes: number;
  readonly logger: Logger;
  /** A failure of the spool's own files: logged here too; the writer keeps it as its last error. */
  readonly onError: (error: EipError) => void;
}

/** Lines from the front of the spool, as the exact bytes of their segment. */
export interface SpoolBatch {
  readonly body: Buffer;
  readonly count: number;
  readonly segment: number;
  readonly start: number;
}

interface Segment {
  readonly seq: number;
  bytes: number;
  lines: number;
}

const segmentPath = (dir: string, seq: number) => join(dir, `${String(seq).padStart(16, '0')}.lp`);

function countLines(buffer: Buffer, end = buffer.length): number {
  let lines = 0;
  for (let i = buffer.indexOf(NEWLINE); i !== -1 && i < end; i = buffer.indexOf(NEWLINE, i + 1)) {
    lines++;
  }
  return lines;
}

export class Spool {
  private pending: string[] = [];
  private jobs: Promise<unknown> = Promise.resolve();
  private closed = false;
  private droppedLines = 0;
  private leftLines = 0;
  private enteredLines: number;

  private constructor(
    private readonly options: SpoolOptions,
    private readonly segmentBytes: number,
    /** Oldest first; the last one is open for appending. */
    private readonly segments: Segment[],
    private active: FileHandle,
    /** Where the first unsent line of segments[0] starts, and how many lines come before it. */
    private cursor: { offset: number; lines: number },
  ) {
    this.enteredLines = this.stored();
  }

  static async open(options: SpoolOptions): Promise<Spool> {
    const { dir, maxBytes } = options;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < MIN_SPOOL_BYTES) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `the spool's maxBytes must be a whole number of at least ${MIN_SPOOL_BYTES} (got ${maxBytes})`,
        { details: { maxBytes } },
      );
    }
    const segmentBytes = Math.min(MAX_SEGMENT_BYTES, Math.floor(maxBytes / 8));
    try {
      await mkdir(dir, { recursive: true });
      const { segments, cursor } = await recover(options);
      const last = segments.at(-1);
      const seq =
        last === undefined || last.bytes >= segmentBytes ? (last?.seq ?? 0) + 1 : last.seq;
      if (seq !== last?.seq) segments.push({ seq, bytes: 0, lines: 0 });
      const active = await open(segmentPath(dir, seq), 'a');
      const spool = new Spool(options, segmentBytes, segments, active, cursor);
      await spool.releaseFinished();
      return spool;
    } catch (error) {
      throw failure(`opening the spool at ${dir}`, error, dir);
    }
  }

  /** Queues a line (no newline in it); it is written with the others given in this tick. */
  append(line: string): void {
    if (this.closed) {
      throw new EipError('IO_ERROR', `the spool at ${this.options.dir} is closed`, {
        details: { dir: this.options.dir },
      });
    }
    this.pending.push(line);
    this.enteredLines++;
    if (this.pending.length === 1) void this.enqueue(() => this.commit());
  }

  /** Lines waiting, including those queued and not yet written. */
  get depth(): number {
    return this.enteredLines - this.leftLines;
  }

  /** Lines that entered since open (those found at open included); `left` never passes it. */
  get entered(): number {
    return this.enteredLines;
  }

  /** Lines that left since open: acknowledged or dropped. */
  get left(): number {
    return this.leftLines;
  }

  /** Lines dropped for space (or lost to a failed write) since open. */
  get dropped(): number {
    return this.droppedLines;
  }

  /** The segment files' size, which `maxBytes` bounds. */
  get bytes(): number {
    return this.segments.reduce((sum, s) => sum + s.bytes, 0);
  }

  /** Up to `maxLines` of the oldest lines, from one segment; undefined when none is written. */
  peek(maxLines: number): Promise<SpoolBatch | undefined> {
    return this.enqueue(async () => {
      const head = this.segments[0];
      if (head === undefined || this.cursor.lines === head.lines) return undefined;
      const { offset } = this.cursor;
      const remaining = head.bytes - offset;
      // Enough for maxLines lines of the segment's average length, and more if they are longer;
      // the segment ends with a newline, so reading on always finds a whole line.
      let length = Math.min(remaining, Math.ceil((head.bytes / head.lines) * maxLines * 1.25));
      for (;;) {
        const body = await this.read(head.seq, offset, length);
        let end = 0;
        let count = 0;
        for (let newline = body.indexOf(NEWLINE); newline !== -1 && count < maxLines; count++) {
          end = newline + 1;
          newline = body.indexOf(NEWLINE, end);
        }
        if (count === maxLines || length === remaining || body.length < length) {
          if (count > 0)
            return { body: body.subarray(0, end), count, segment: head.seq, start: offset };
          // Only if the file was cut behind the spool's back: say so, rather than send nothing.
          throw failure(
            `reading segment ${head.seq} of the spool at ${this.options.dir}`,
            new Error('the file is shorter than the spool wrote it'),
            this.options.dir,
          );
        }
        length = Math.min(remaining, length * 2);
      }
    });
  }

  /** The batch reached InfluxDB: moves the cursor past it and frees finished segments. */
  ack(batch: SpoolBatch): Promise<void> {
    return this.enqueue(async () => {
      const head = this.segments[0];
      if (head === undefined || head.seq !== batch.segment || this.cursor.offset !== batch.start) {
        // Its segment was dropped for space while the batch was out, and its lines counted as
        // dropped; they made it after all.
        this.droppedLines -= batch.count;
        return;
      }
      this.cursor = {
        offset: batch.start + batch.body.length,
        lines: this.cursor.lines + batch.count,
      };
      this.leftLines += batch.count;
      await this.io('freeing', () => this.releaseFinished());
      await this.io('writing the cursor of', () => this.saveCursor());
    });
  }

  /** Makes what is written survive a power cut (fdatasync). */
  sync(): Promise<void> {
    return this.enqueue(() => this.io('syncing', () => this.active.datasync()));
  }

  /** Writes what is queued, syncs and closes the files; the lines stay for the next open. */
  close(): Promise<void> {
    if (this.closed) return this.jobs.then(() => undefined);
    this.closed = true;
    return this.enqueue(async () => {
      await this.io('syncing', () => this.active.datasync());
      await this.active.close();
    });
  }

  private stored(): number {
    return this.segments.reduce((sum, s) => sum + s.lines, 0) - this.cursor.lines;
  }

  /** Runs jobs one at a time, in the order they were queued. */
  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.jobs.then(job);
    this.jobs = run.catch(() => undefined);
    return run;
  }

  private async io<T>(what: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw failure(`${what} the spool at ${this.options.dir}`, error, this.options.dir);
    }
  }

  private async read(seq: number, position: number, length: number): Promise<Buffer> {
    return this.io('reading', async () => {
      const file = await open(segmentPath(this.options.dir, seq), 'r');
      try {
        const buffer = Buffer.allocUnsafe(length);
        const { bytesRead } = await file.read(buffer, 0, length, position);
        return buffer.subarray(0, bytesRead);
      } finally {
        await file.close();
      }
    });
  }

  /** Writes the queued lines, starting a new segment whenever one is full, then the bound. */
  private async commit(): Promise<void> {
    const lines = this.pending;
    this.pending = [];
    let written = 0;
    try {
      const data = Buffer.from(`${lines.join('\n')}\n`);
      let offset = 0;
      while (written < lines.length) {
        const active = this.segments.at(-1) as Segment;
        const room = this.segmentBytes - active.bytes;
        // Usually all of it fits; else whole lines up to the room left (at least one).
        let end = data.length;
        let count = lines.length - written;
        if (end - offset > room) {
          end = offset;
          count = 0;
          for (let newline = data.indexOf(NEWLINE, offset); newline !== -1; count++) {
            if (count > 0 && newline + 1 - offset > room) break;
            end = newline + 1;
            newline = data.indexOf(NEWLINE, end);
          }
        }
        await this.writeActive(active, data.subarray(offset, end));
        active.lines += count;
        written += count;
        offset = end;
        if (active.bytes >= this.segmentBytes) await this.rotate();
      }
      await this.enforceBound();
    } catch (error) {
      const lost = lines.length - written;
      this.droppedLines += lost;
      this.leftLines += lost;
      const eip = failure(
        `writing ${lost} points to the spool at ${this.options.dir}`,
        error,
        this.options.dir,
      );
      this.options.logger.error({ dir: this.options.dir, lost, err: eip }, `${eip.message}: lost`);
      this.options.onError(eip);
    }
  }

  private async writeActive(active: Segment, chunk: Buffer): Promise<void> {
    try {
      await this.active.writeFile(chunk);
      active.bytes += chunk.length;
    } catch (error) {
      // A short write (disk full) must not leave half a line for the next one to join.
      await this.active.truncate(active.bytes).catch(() => undefined);
      throw error;
    }
  }

  private async rotate(): Promise<void> {
    const seq = (this.segments.at(-1) as Segment).seq + 1;
    const next = await open(segmentPath(this.options.dir, seq), 'a');
    await this.active.close();
    this.active = next;
    this.segments.push({ seq, bytes: 0, lines: 0 });
    await this.releaseFinished();
  }

  /** Deletes sent segments from the front, except the one being appended to. */
  private async releaseFinished(): Promise<void> {
    for (let head = this.segments[0]; head && this.segments.length > 1; head = this.segments[0]) {
      if (this.cursor.lines < head.lines) return;
      await unlink(segmentPath(this.options.dir, head.seq));
      this.segments.shift();
      this.cursor = { offset: 0, lines: 0 };
    }
  }

  private async enforceBound(): Promise<void> {
    let dropped = 0;
    let first: number | undefined;
    while (this.bytes > this.options.maxBytes && this.segments.length > 1) {
      const head = this.segments[0] as Segment;
      await unlink(segmentPath(this.options.dir, head.seq));
      this.segments.shift();
      dropped += head.lines - this.cursor.lines;
      first ??= head.seq;
      this.cursor = { offset: 0, lines: 0 };
    }
    if (dropped === 0) return;
    this.droppedLines += dropped;
    this.leftLines += dropped;
    this.options.logger.warn(
      { dir: this.options.dir, dropped, maxBytes: this.options.maxBytes, fromSegment: first },
      `time-series spool full (${this.options.maxBytes} bytes): dropped its ${dropped} oldest points`,
    );
  }

  private async saveCursor(): Promise<void> {
    const head = this.segments[0] as Segment;
    const path = join(this.options.dir, CURSOR);
    await writeAtomically(path, `${head.seq} ${this.cursor.offset}\n`);
  }
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const temporary = `${path}.tmp`;
  const file = await open(temporary, 'w');
  try {
    await file.write(text);
  } finally {
    await file.close();
  }
  await rename(temporary, path);
}

interface Recovered {
  readonly segments: Segment[];
  readonly cursor: { offset: number; lines: number };
}

/** Reads what a previous run left: segments (torn tails cut), and where sending stopped. */
async function recover({ dir, logger }: SpoolOptions): Promise<Recovered> {
  const seqs = (await readdir(dir))
    .map((name) => SEGMENT.exec(name)?.[1])
    .filter((seq) => seq !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  const saved = await readCursor(dir);
  const segments: Segment[] = [];
  let cursor = { offset: 0, lines: 0 };
  for (const seq of seqs) {
    const path = segmentPath(dir, seq);
    // Before the cursor's segment: sent, and only not deleted because of a crash.
    if (saved && seq < saved.seq) {
      await unlink(path);
      continue;
    }
    const content = await readFile(path);
    const whole = content.lastIndexOf(NEWLINE) + 1;
    if (whole < content.length) {
      logger.warn(
        { dir, segment: seq, bytes: content.length - whole },
        'time-series spool: cut a torn last line (a crash during a write)',
      );
      const file = await open(path, 'r+');
      await file.truncate(whole).finally(() => file.close());
    }
    if (seq === saved?.seq) {
      const offset = Math.min(saved.offset, whole);
      // A cursor inside a line (a torn cursor file) starts from the segment's start instead:
      // sending some points again is harmless, skipping some is not.
      cursor =
        content[offset - 1] === NEWLINE ? { offset, lines: countLines(content, offset) } : cursor;
    }
    segments.push({ seq, bytes: whole, lines: countLines(content, whole) });
  }
  return { segments, cursor };
}

async function readCursor(dir: string): Promise<{ seq: number; offset: number } | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, CURSOR), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const match = /^(\d+) (\d+)\n$/.exec(text);
  return match ? { seq: Number(match[1]), offset: Number(match[2]) } : undefined;
}

function failure(what: string, error: unknown, dir: string): EipError {
  if (isEipError(error)) return error;
  return new EipError('IO_ERROR', `${what} failed: ${(error as Error).message}`, {
    retryable: true,
    cause: error,
    details: { dir },
  });
}
