/**
 * Production and consumption curves for simulated meters: a rate (W, m3/h, kW) over the day,
 * piecewise linear between points `HH:MM=value` and wrapping at midnight, or one constant.
 * Counters integrate a curve exactly, trapezoid by trapezoid, rather than sampling it, so every
 * read agrees with every earlier one however often the meter is polled. Times of day are UTC:
 * a run then depends neither on the host's time zone nor on daylight saving.
 */
import { z } from 'zod';
import { EipError } from '../../core/errors.js';

const MS_PER_MINUTE = 60_000;
const MS_PER_HOUR = 3_600_000;
export const MS_PER_DAY = 86_400_000;

/** Which part of the rate an integral adds up: meters count import and export apart. */
export type Part = 'signed' | 'positive' | 'negative' | 'absolute';

/** Each part as a function of the rate. */
const SHAPES: Readonly<Record<Exclude<Part, 'signed'>, (rate: number) => number>> = {
  positive: (rate) => Math.max(rate, 0),
  negative: (rate) => Math.max(-rate, 0),
  absolute: Math.abs,
};

/** The rate at one time of day, in ms after midnight. */
export interface CurvePoint {
  readonly atMs: number;
  readonly rate: number;
}

const DECIMAL = /^-?\d+(\.\d+)?$/;

const pointSchema = z.string().transform((text, ctx): CurvePoint => {
  const match = /^(\d{2}):(\d{2})=(.*)$/.exec(text.trim());
  if (!match) {
    ctx.addIssue({ code: 'custom', message: 'is not HH:MM=value' });
    return z.NEVER;
  }
  const [, hours = '', minutes = '', rate = ''] = match;
  if (Number(hours) > 23 || Number(minutes) > 59) {
    ctx.addIssue({
      code: 'custom',
      message: `${hours}:${minutes} is not a time of day (00:00 to 23:59)`,
    });
    return z.NEVER;
  }
  if (!DECIMAL.test(rate)) {
    ctx.addIssue({ code: 'custom', message: `"${rate}" is not a decimal number` });
    return z.NEVER;
  }
  return { atMs: (Number(hours) * 60 + Number(minutes)) * MS_PER_MINUTE, rate: Number(rate) };
});

const pointsSchema = z.array(pointSchema).superRefine((points, ctx) => {
  points.forEach((point, i) => {
    const before = points[i - 1];
    if (before && point.atMs <= before.atMs) {
      ctx.addIssue({
        code: 'custom',
        path: [i],
        message: `comes after ${timeOfDay(before.atMs)}: times must increase through the day`,
      });
    }
  });
});

function timeOfDay(atMs: number): string {
  const minutes = atMs / MS_PER_MINUTE;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;
}

/**
 * A curve from its text: one decimal (a constant rate) or points `HH:MM=value,...` in
 * increasing time. Errors name `flag` and every bad point.
 */
export function parseCurve(spec: string, flag = 'curve'): Curve {
  const text = spec.trim();
  if (DECIMAL.test(text)) return Curve.constant(Number(text));
  const parts = text.split(',');
  const parsed = pointsSchema.safeParse(parts);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const index = Number(issue.path[0]);
      return `point ${index + 1} "${parts[index]?.trim()}" ${issue.message}`;
    });
    throw new EipError(
      'INVALID_ARGUMENT',
      `${flag}: ${problems.join('; ')} (give a rate like 2300, or HH:MM=value,... such as 06:00=0,12:00=2300,18:00=0)`,
      { details: { flag } },
    );
  }
  return Curve.through(parsed.data);
}

/** A rate over the day that repeats every day. */
export class Curve {
  /** rate·ms from midnight to each knot. */
  private readonly areaAt: readonly number[];
  private readonly parts = new Map<Exclude<Part, 'signed'>, Curve>();

  /** `knots` run from 0 to MS_PER_DAY, in increasing time, the last rate equal to the first. */
  private constructor(private readonly knots: readonly CurvePoint[]) {
    let area = 0;
    this.areaAt = knots.map((knot, i) => {
      const before = knots[i - 1];
      if (before) area += ((knot.atMs - before.atMs) * (knot.rate + before.rate)) / 2;
      return area;
    });
  }

  static constant(rate: number): Curve {
    return new Curve([
      { atMs: 0, rate },
      { atMs: MS_PER_DAY, rate },
    ]);
  }

  /**
   * Linear between `points` (increasing times of day, at least one), and from the last point past
   * midnight to the first.
   */
  static through(points: readonly CurvePoint[]): Curve {
    const first = points[0];
    const last = points[points.length - 1];
    if (!first || !last) throw new RangeError('a curve needs at least one point');
    // The rate at midnight lies on the wrapping segment from the last point to the first.
    const midnight = between(last, { atMs: first.atMs + MS_PER_DAY, rate: first.rate }, MS_PER_DAY);
    const inner = points.filter((point) => point.atMs > 0);
    return new Curve([{ atMs: 0, rate: midnight }, ...inner, { atMs: MS_PER_DAY, rate: midnight }]);
  }

  /** The rate at `atMs` (ms since the epoch). */
  rateAt(atMs: number): number {
    return this.rateOfDay(atMs - Math.floor(atMs / MS_PER_DAY) * MS_PER_DAY);
  }

  /**
   * The integral of the rate, or of a part of it, from `fromMs` to `toMs` (ms since the epoch),
   * in rate·hours: W give Wh, m3/h give m3, kW give kWh. Negative when `toMs` < `fromMs`.
   */
  integral(fromMs: number, toMs: number, part: Part = 'signed'): number {
    if (part !== 'signed') return this.part(part).integral(fromMs, toMs);
    // Whole days count a day's area each; only the two partial days are integrated piecewise.
    const fromDay = Math.floor(fromMs / MS_PER_DAY);
    const toDay = Math.floor(toMs / MS_PER_DAY);
    const perDay = this.areaAt[this.areaAt.length - 1] ?? 0;
    const area =
      (toDay - fromDay) * perDay +
      this.areaSinceMidnight(toMs - toDay * MS_PER_DAY) -
      this.areaSinceMidnight(fromMs - fromDay * MS_PER_DAY);
    return area / MS_PER_HOUR;
  }

  /** The positive part (max(rate, 0)), negative part (max(-rate, 0)) or magnitude. */
  private part(part: Exclude<Part, 'signed'>): Curve {
    const cached = this.parts.get(part);
    if (cached) return cached;
    // Split segments where the rate crosses zero, so each part stays linear between knots.
    const knots = this.knots.flatMap((knot, i) => {
      const before = this.knots[i - 1];
      if (!before || before.rate * knot.rate >= 0) return [knot];
      const zeroAtMs =
        before.atMs + ((knot.atMs - before.atMs) * before.rate) / (before.rate - knot.rate);
      return [{ atMs: zeroAtMs, rate: 0 }, knot];
    });
    const shaped = new Curve(knots.map(({ atMs, rate }) => ({ atMs, rate: SHAPES[part](rate) })));
    this.parts.set(part, shaped);
    return shaped;
  }

  /** rate·ms from midnight to `dayMs` (0 to MS_PER_DAY). */
  private areaSinceMidnight(dayMs: number): number {
    const i = this.segmentIndex(dayMs);
    const start = this.knots[i] as CurvePoint;
    const rate = this.rateOfDay(dayMs);
    return (this.areaAt[i] ?? 0) + ((dayMs - start.atMs) * (start.rate + rate)) / 2;
  }

  /** The knot that starts the segment holding `dayMs`. */
  private segmentIndex(dayMs: number): number {
    let i = 0;
    while (i < this.knots.length - 2 && (this.knots[i + 1] as CurvePoint).atMs <= dayMs) i++;
    return i;
  }

  /** The rate at `dayMs` after midnight. */
  private rateOfDay(dayMs: number): number {
    const i = this.segmentIndex(dayMs);
    return between(this.knots[i] as CurvePoint, this.knots[i + 1] as CurvePoint, dayMs);
  }
}

/** The rate at `atMs` on the line from `start` to `end`. */
function between(start: CurvePoint, end: CurvePoint, atMs: number): number {
  return start.rate + ((end.rate - start.rate) * (atMs - start.atMs)) / (end.atMs - start.atMs);
}
