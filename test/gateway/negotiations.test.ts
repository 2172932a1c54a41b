/**
 * The gateway's negotiation log on its real store (LevelDB in a temporary directory): the two
 * parties' reports fold into one negotiation, the counts give the agreement rate, a replay changes
 * nothing, a report that does not fit the park or the other party's is refused and changes
 * nothing, and it all survives a restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isEipError } from '../../core/errors.js';
import { TOPICS } from '../../core/messages/topics.js';
import {
  NegotiationLog,
  type NegotiationRecord,
  reportedBy,
} from '../../gateway/negotiations/log.js';
import { ParkDirectory } from '../../gateway/park.js';
import {
  brokenOff,
  counterpartReport,
  negotiationId,
  type OutcomeReport,
  outcomeReport,
} from '../support/negotiation-reports.js';

const directory = new ParkDirectory({
  digester: { address: '0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A', meters: {} },
  brewery: { address: '0x1563915e194D8CfBA1943570603F7606A3115508', meters: {} },
  dairy: { address: '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', meters: {} },
});
const ALL = { limit: 500 };

let n = 0;
const newId = () => negotiationId(++n);

/** A requester's report (the seller, by default) of negotiation `id`. */
const requested = (id: string, fields: Partial<OutcomeReport> = {}) =>
  outcomeReport({
    prosumer: 'digester',
    counterpart: 'brewery',
    negotiation_id: id,
    rounds: 12,
    started_at_ms: 1_000,
    ended_at_ms: 5_000,
    ...fields,
  });

/** The counterpart's report of the same negotiation. */
const answered = (id: string, fields: Partial<OutcomeReport> = {}) =>
  counterpartReport(requested(id), { started_at_ms: 1_200, ended_at_ms: 5_100, ...fields });

const failed = brokenOff;

const DAY_MS = 86_400_000;
let dir: string;
let log: NegotiationLog;
/** The log's clock: the reports below end a few seconds into it. */
let clock = 10_000;

beforeEach(async () => {
  clock = 10_000;
  dir = mkdtempSync(join(tmpdir(), 'eip-negotiations-'));
  log = await NegotiationLog.open(dir, directory, { retainDays: 1, now: () => clock });
});
afterEach(async () => {
  await log.close();
  rmSync(dir, { recursive: true, force: true });
});

async function refused(prosumer: string, report: OutcomeReport): Promise<string> {
  const error = await log.record(prosumer, report).catch((e: unknown) => e);
  expect(isEipError(error, 'INVALID_MESSAGE'), String(error)).toBe(true);
  return (error as Error).message;
}

describe('NegotiationLog', () => {
  it("folds both parties' reports into one negotiation", async () => {
    const id = newId();
    await log.record('digester', requested(id, failed('self', 'reserves-apart')));
    const record = await log.record('brewery', answered(id, failed('counterpart')));
    expect(record).toEqual({
      id,
      seq: 1,
      utility: 'biogas',
      requester: 'digester',
      responder: 'brewery',
      seller: 'digester',
      buyer: 'brewery',
      outcome: 'no-agreement',
      // The party that broke off says why.
      reason: 'reserves-apart',
      endedBy: 'digester',
      rounds: 12,
      startedAtMs: 1_000,
      endedAtMs: 5_100,
      requesterSaid: 'no-agreement',
      responderSaid: 'no-agreement',
    });
    expect(log.get(id)).toEqual(record);
  });

  it('takes the responder first just as well, and lets an agreement win over a proposal', async () => {
    const id = newId();
    await log.record('brewery', answered(id, { outcome: 'agreed', rounds: 13 }));
    const record = await log.record('digester', requested(id, { outcome: 'proposed' }));
    expect(record).toMatchObject({
      requester: 'digester',
      responder: 'brewery',
      seller: 'digester',
      buyer: 'brewery',
      outcome: 'agreed',
      reason: null,
      endedBy: null,
      rounds: 13,
      requesterSaid: 'proposed',
      responderSaid: 'agreed',
    });
  });

  it('ignores a replayed report, but hears a proposal that became an agreement', async () => {
    const id = newId();
    const kept = await log.record('digester', requested(id, { outcome: 'proposed' }));
    // The same again: nothing changes, nothing is written again.
    expect(await log.record('digester', requested(id, { outcome: 'proposed' }))).toBe(kept);
    expect(log.get(id)).toBe(kept);
    // A replay cannot turn it into something else...
    const replay = await log.record('digester', requested(id, failed('self')));
    expect(replay.outcome).toBe('proposed');
    // ...but a countersignature heard late can.
    expect((await log.record('digester', requested(id))).outcome).toBe('agreed');
    expect(log.list({}, ALL).items).toHaveLength(1);
  });

  it('counts per utility: the agreement rate, rounds to agreement, reasons, unanswered', async () => {
    const agreed = [newId(), newId(), newId()];
    for (const [i, id] of agreed.entries()) {
      await log.record('digester', requested(id, { rounds: 10 + i }));
    }
    await log.record('brewery', answered(newId(), failed('self', 'round-limit')));
    await log.record('digester', requested(newId(), failed('counterpart', 'deadline')));
    await log.record('digester', requested(newId(), { outcome: 'proposed' }));
    await log.record(
      'dairy',
      requested(newId(), {
        prosumer: 'dairy',
        counterpart: null,
        outcome: 'no-counterpart',
        rounds: 0,
      }),
    );
    await log.record(
      'dairy',
      requested(newId(), { prosumer: 'dairy', utility: 'heat', ...failed('self', 'timeout') }),
    );

    const park = log.counts({});
    expect(park.biogas).toEqual({
      requests: 7,
      unanswered: 1,
      agreed: 3,
      failed: 2,
      pending: 1,
      agreementRate: 3 / 5,
      meanRoundsToAgreement: 11,
      reasons: { 'round-limit': 1, deadline: 1 },
    });
    expect(park.heat).toMatchObject({ requests: 1, failed: 1, agreementRate: 0 });
    expect(park.electricity).toMatchObject({
      requests: 0,
      agreementRate: null,
      meanRoundsToAgreement: null,
    });
    // The dairy's own: its unanswered biogas request, its failed heat negotiation with the brewery.
    const dairy = log.counts({ party: 'dairy' });
    expect(dairy.biogas).toMatchObject({ requests: 1, unanswered: 1, agreementRate: null });
    expect(dairy.heat).toMatchObject({ requests: 1, failed: 1 });
    expect(log.counts({ party: 'brewery' }).heat.requests).toBe(1);
  });

  it('pages newest first, filtered by utility, party and outcome', async () => {
    const ids = [newId(), newId(), newId()];
    await log.record('digester', requested(ids[0] as string));
    await log.record('digester', requested(ids[1] as string, failed('self')));
    await log.record('digester', requested(ids[2] as string, { utility: 'heat' }));
    // A second report does not move a negotiation in the list.
    await log.record('brewery', answered(ids[0] as string));
    const all = log.list({}, ALL).items.map((r) => r.id);
    expect(all).toEqual([...ids].reverse());
    const first = log.list({}, { limit: 2 });
    expect(first.items.map((r) => r.id)).toEqual(all.slice(0, 2));
    const rest = log.list({}, { limit: 2, before: first.next ?? undefined });
    expect(rest.items.map((r) => r.id)).toEqual(all.slice(2));
    expect(rest.next).toBeNull();
    expect(log.list({ utility: 'heat' }, ALL).items.map((r) => r.id)).toEqual([ids[2]]);
    expect(log.list({ outcome: 'no-agreement' }, ALL).items.map((r) => r.id)).toEqual([ids[1]]);
    expect(log.list({ party: 'dairy' }, ALL).items).toEqual([]);
    expect(log.list({ party: 'brewery' }, ALL).items).toHaveLength(3);
  });

  it('takes reports that arrive together: both parties at once, many negotiations at once', async () => {
    const both = newId();
    const [first, second] = await Promise.all([
      log.record('digester', requested(both, failed('self'))),
      log.record('brewery', answered(both, failed('counterpart'))),
    ]);
    expect(reportedBy(first)).toEqual({ digester: 'no-agreement' });
    expect(reportedBy(second)).toEqual({ digester: 'no-agreement', brewery: 'no-agreement' });
    const ids = Array.from({ length: 50 }, newId);
    await Promise.all(
      ids.flatMap((id) => [
        log.record('digester', requested(id)),
        log.record('brewery', answered(id)),
      ]),
    );
    const listed = log.list({}, ALL).items;
    expect(listed.map((r) => r.id)).toEqual([...ids].reverse().concat(both));
    expect(new Set(listed.map((r) => r.seq)).size).toBe(51);
    expect(listed.every((r) => Object.keys(reportedBy(r)).length === 2)).toBe(true);
    // And as they were on disk.
    await log.close();
    log = await NegotiationLog.open(dir, directory, { retainDays: 1, now: () => clock });
    expect(log.list({}, ALL).items).toEqual(listed);
  });

  it('refuses what does not fit the park or the other party, and keeps nothing of it', async () => {
    const id = newId();
    expect(await refused('brewery', requested(id))).toMatch(/reported by brewery for digester/);
    expect(await refused('digester', requested(id, { counterpart: 'stranger' }))).toMatch(
      /stranger is not a plant of this park/,
    );
    expect(log.get(id)).toBeUndefined();

    await log.record('digester', requested(id));
    // A third plant cannot report it, nor can the counterpart tell a different story.
    expect(
      await refused(
        'dairy',
        answered(id, { prosumer: 'dairy', counterpart: 'digester', role: 'buyer' }),
      ),
    ).toMatch(/digester reported it with brewery, not with dairy/);
    expect(await refused('brewery', answered(id, { counterpart: 'dairy' }))).toMatch(
      /brewery names dairy, but digester reported it/,
    );
    expect(await refused('brewery', answered(id, { utility: 'heat' }))).toMatch(
      /it is biogas, not heat/,
    );
    expect(await refused('brewery', answered(id, { role: 'seller' }))).toMatch(
      /both parties say they were the seller/,
    );
    expect(await refused('brewery', answered(id, { requester: true }))).toMatch(
      /both parties say they made the request/,
    );
    expect(reportedBy(log.get(id) as NegotiationRecord)).toEqual({ digester: 'agreed' });
  });

  it('keeps every report across a restart, in order, and numbers on from there', async () => {
    const [a, b, c] = [newId(), newId(), newId()];
    await log.record('digester', requested(a, failed('self')));
    await log.record('digester', requested(b));
    await log.record('brewery', answered(a, failed('counterpart')));
    await log.close();
    log = await NegotiationLog.open(dir, directory, { retainDays: 1, now: () => clock });
    expect(log.list({}, ALL).items.map((r) => [r.id, r.seq])).toEqual([
      [b, 2],
      [a, 1],
    ]);
    expect(reportedBy(log.get(a) as NegotiationRecord)).toEqual({
      digester: 'no-agreement',
      brewery: 'no-agreement',
    });
    expect((await log.record('digester', requested(c))).seq).toBe(3);
  });
});

describe('retention', () => {
  it('forgets negotiations that ended before the window, in memory and on disk', async () => {
    const [old, recent] = [newId(), newId()];
    await log.record('digester', requested(old));
    clock = DAY_MS;
    await log.record(
      'digester',
      requested(recent, { started_at_ms: DAY_MS - 1_000, ended_at_ms: DAY_MS }),
    );
    expect(log.list({}, ALL).items.map((r) => r.id)).toEqual([recent, old]);
    // A day after the first ended (and a minute after the last look), it is forgotten.
    clock = DAY_MS + 60_000;
    await log.record('brewery', answered(recent));
    expect(log.list({}, ALL).items.map((r) => r.id)).toEqual([recent]);
    expect(log.get(old)).toBeUndefined();
    expect(log.counts({}).biogas.requests).toBe(1);
    await log.close();
    log = await NegotiationLog.open(dir, directory, { retainDays: 1, now: () => clock });
    expect(log.list({}, ALL).items.map((r) => [r.id, r.seq])).toEqual([[recent, 2]]);
    // Numbering goes on from what is kept, so a new one still pages after the rest.
    expect((await log.record('digester', requested(newId()))).seq).toBe(3);
  });
});

describe('the negotiationOutcome message', () => {
  const parse = (overrides: Partial<Record<keyof OutcomeReport, unknown>>) =>
    TOPICS.negotiationOutcome.schema.safeParse({ ...requested(newId()), ...overrides });
  const problems = (overrides: Partial<Record<keyof OutcomeReport, unknown>>) => {
    const result = parse(overrides);
    return result.success
      ? []
      : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('holds together: no counterpart exactly when nobody answered, a reason exactly when failed', () => {
    expect(problems({})).toEqual([]);
    expect(problems({ counterpart: null })).toEqual([
      'counterpart: must be null exactly when the outcome is no-counterpart',
    ]);
    expect(problems({ outcome: 'no-counterpart', counterpart: null, requester: false })).toEqual([
      'requester: only the requester can have found no counterpart',
    ]);
    expect(problems({ counterpart: 'digester' })).toEqual([
      'counterpart: must not be the prosumer itself',
    ]);
    expect(problems({ outcome: 'no-agreement' })).toEqual([
      'reason: is set exactly when no-agreement',
      'ended_by: is set exactly when no-agreement',
    ]);
    expect(problems({ reason: 'deadline' })).toEqual(['reason: is set exactly when no-agreement']);
    expect(problems({ ended_at_ms: 999 })).toEqual([
      'ended_at_ms: must not be before started_at_ms',
    ]);
    expect(problems({ reason: 'bored', outcome: 'no-agreement', ended_by: 'self' })).toHaveLength(
      1,
    );
  });
});
