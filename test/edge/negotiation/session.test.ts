/**
 * Two sessions exchanging signed messages reach exactly what the in-process engine computes for
 * the same psi, and every kind of tampering ends the negotiation with a named refusal.
 */
import { Wallet, ZeroHash } from 'ethers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertSignedBy,
  marketDomain,
  negotiationId,
  structHash,
} from '../../../core/messages/eip712.js';
import type { Payload } from '../../../core/messages/topics.js';
import { type NegotiationSetup, negotiate } from '../../../core/negotiation/protocol.js';
import { quantityBaseUnits, unitPriceBaseUnits } from '../../../core/units.js';
import type {
  NegotiationSession,
  Outgoing,
  SessionResult,
  SessionStep,
} from '../../../edge/negotiation/session.js';
import { bilateral, type Side, TABLE1 } from '../../core/negotiation/setup.js';
import { sessionPair } from '../../support/sessions.js';

const sellerKey = new Wallet(`0x${'11'.repeat(32)}`);
const buyerKey = new Wallet(`0x${'22'.repeat(32)}`);
const domain = marketDomain(31337, '0x5FbDB2315678afecb367f032d93F642f64180aa3');
const id = negotiationId(sellerKey.address, 'biogas', 1n);

const sessions = (setup: NegotiationSetup) =>
  sessionPair(setup, { id, domain, sellerKey, buyerKey });

type Session = NegotiationSession;

/** Delivers each side's messages to the other until both have a result. */
async function play(
  seller: Session,
  buyer: Session,
  tamper: (message: Outgoing) => Outgoing = (m) => m,
): Promise<{
  seller: SessionResult | undefined;
  buyer: SessionResult | undefined;
  messages: Outgoing[];
}> {
  const messages: Outgoing[] = [];
  let queue: { to: Session; message: Outgoing }[] = [];
  const enqueue = (from: Session, step: SessionStep) => {
    const to = from === seller ? buyer : seller;
    for (const message of step.send) {
      messages.push(message);
      queue.push({ to, message: tamper(message) });
    }
  };
  enqueue(seller, await seller.start());
  for (let guard = 0; queue.length > 0 && guard < 100_000; guard++) {
    const [next, ...rest] = queue;
    queue = rest;
    if (!next) break;
    const { to, message } = next;
    const step =
      message.kind === 'offer'
        ? await to.onOffer(message.payload)
        : message.kind === 'proposal'
          ? await to.onProposal(message.payload)
          : message.kind === 'countersigned'
            ? to.onCountersigned(message.payload)
            : to.onBreakOff({
                negotiation_id: id,
                prosumer: 'x',
                reason: message.reason,
                round: message.round,
              });
    enqueue(to, step);
  }
  return { seller: seller.result, buyer: buyer.result, messages };
}

describe('a negotiation over signed messages', () => {
  it('reaches the engine agreement of the seed case study, signed by both', async () => {
    const setup = bilateral(TABLE1.seller, TABLE1.buyer);
    const engine = negotiate(setup);
    if (engine.kind !== 'agreement') throw new Error('engine found no agreement');
    const { seller, buyer } = sessions(setup);
    const played = await play(seller, buyer);

    // The engine's moves, then the countersigned agreement back to the proposer.
    expect(played.messages).toHaveLength(engine.transcript.length + 1);
    expect(played.messages.at(-1)?.kind).toBe('countersigned');
    if (played.seller?.kind !== 'agreed' || played.buyer?.kind !== 'agreed')
      throw new Error('both sides must end agreed');
    expect(played.seller.signed).toEqual(played.buyer.signed);
    const { agreement, seller_signature, buyer_signature, transcript } = played.seller.signed;
    expect(agreement.quantity).toBe(quantityBaseUnits(engine.quantity));
    expect(agreement.unitPrice).toBe(unitPriceBaseUnits(engine.price));
    assertSignedBy(domain, 'Agreement', agreement, seller_signature, sellerKey.address);
    assertSignedBy(domain, 'Agreement', agreement, buyer_signature, buyerKey.address);
    // The transcript is the engine's, move for move, and its chain ends in the agreement's hash.
    expect(transcript?.map((t) => [t.offer.round, t.offer.quantity, t.offer.unitPrice])).toEqual(
      engine.transcript.map((m) => [
        m.round,
        quantityBaseUnits(m.quantity),
        unitPriceBaseUnits(m.price),
      ]),
    );
    const last = transcript?.at(-1);
    expect(last && structHash('Offer', last.offer)).toBe(agreement.transcriptHash);
    expect(transcript?.[0]?.offer.previous).toBe(ZeroHash);
  });

  it('ends like the engine for any psi: same outcome, rounds and terms', async () => {
    const price = (role: 'seller' | 'buyer') =>
      fc
        .record({ a: fc.integer({ min: 20, max: 80 }), b: fc.integer({ min: 20, max: 80 }) })
        .map(({ a, b }) =>
          role === 'seller'
            ? { ip: Math.max(a, b), rp: Math.min(a, b) }
            : { ip: Math.min(a, b), rp: Math.max(a, b) },
        );
    const side = (role: 'seller' | 'buyer') =>
      fc
        .record({
          price: price(role),
          dl: fc.integer({ min: 1, max: 12 }),
          cr: fc.constantFrom(0.5, 1, 2),
          have: fc.integer({ min: 1, max: 200 }),
          floor: fc.integer({ min: 0, max: 100 }),
        })
        .map(
          (s): Side => ({
            price: { ...s.price, dl: s.dl, cr: s.cr },
            quantity:
              role === 'seller'
                ? { ip: s.have, rp: s.have, dl: s.dl, cr: s.cr }
                : { ip: s.have, rp: Math.floor((s.have * s.floor) / 100), dl: s.dl, cr: s.cr },
          }),
        );
    await fc.assert(
      fc.asyncProperty(side('seller'), side('buyer'), async (s, b) => {
        const setup = bilateral(s, b, { maxRounds: 40 });
        const engine = negotiate(setup);
        const { seller, buyer } = sessions(setup);
        const played = await play(seller, buyer);
        if (engine.kind === 'agreement') {
          const agreed = [played.seller, played.buyer].find((r) => r?.kind === 'agreed');
          if (agreed?.kind !== 'agreed')
            throw new Error(`expected agreement, got ${JSON.stringify(played.seller)}`);
          expect(agreed.signed.agreement.quantity).toBe(quantityBaseUnits(engine.quantity));
          expect(agreed.signed.agreement.unitPrice).toBe(unitPriceBaseUnits(engine.price));
          expect(agreed.signed.transcript).toHaveLength(engine.transcript.length);
        } else {
          const ends = [played.seller, played.buyer];
          const breaker = engine.brokenOffBy;
          const own = breaker === 'seller' ? played.seller : played.buyer;
          expect(own).toMatchObject({ kind: 'no-agreement', reason: engine.reason, by: 'self' });
          for (const end of ends) expect(end?.kind).toBe('no-agreement');
        }
      }),
      { numRuns: 150 },
    );
  });

  const tamperings: [string, (m: Outgoing) => Outgoing, RegExp][] = [
    [
      'a forged signature',
      (m) =>
        m.kind === 'offer' &&
        m.payload.offer.round === 2 &&
        m.payload.offer.proposer === buyerKey.address
          ? { ...m, payload: { ...m.payload, signature: `0x${'ab'.repeat(64)}1b` } }
          : m,
      /signature/,
    ],
    [
      'a changed price after signing',
      (m) =>
        m.kind === 'offer' && m.payload.offer.round === 1
          ? {
              ...m,
              payload: {
                ...m.payload,
                offer: {
                  ...m.payload.offer,
                  unitPrice: m.payload.offer.unitPrice + 1_000_000_000_000n,
                },
              },
            }
          : m,
      /signed by 0x/,
    ],
    [
      'a skipped link in the chain',
      (m) =>
        m.kind === 'offer' && m.payload.offer.round === 3
          ? { ...m, payload: { ...m.payload, offer: { ...m.payload.offer, previous: ZeroHash } } }
          : m,
      /does not follow the previous offer/,
    ],
  ];

  it.each(tamperings)('refuses %s and breaks off naming it', async (_, tamper, message) => {
    const { seller, buyer } = sessions(bilateral(TABLE1.seller, TABLE1.buyer));
    const played = await play(seller, buyer, tamper);
    const refused = [played.seller, played.buyer].find(
      (r) => r?.kind === 'no-agreement' && r.error,
    );
    expect(refused).toMatchObject({ reason: 'invalid-offer', by: 'self' });
    if (refused?.kind !== 'no-agreement') throw new Error('unreachable');
    expect(refused.error?.message).toMatch(message);
    // The other side learns of it from the break-off.
    const other = refused === played.seller ? played.buyer : played.seller;
    expect(other).toMatchObject({
      kind: 'no-agreement',
      reason: 'invalid-offer',
      by: 'counterpart',
    });
  });

  it('refuses an agreement whose terms differ from the acceptance', async () => {
    const { seller, buyer } = sessions(bilateral(TABLE1.seller, TABLE1.buyer));
    const played = await play(seller, buyer, (m) =>
      m.kind === 'proposal'
        ? {
            ...m,
            payload: {
              ...m.payload,
              agreement: { ...m.payload.agreement, quantity: m.payload.agreement.quantity + 1n },
            },
          }
        : m,
    );
    const refused = [played.seller, played.buyer].find(
      (r): r is Extract<SessionResult, { kind: 'no-agreement' }> =>
        r?.kind === 'no-agreement' && r.error !== undefined,
    );
    expect(refused?.error?.message).toMatch(/terms differ from the acceptance/);
  });

  it('ends without agreement when the counterpart refuses the proposal at its deadline', async () => {
    // The seller's last move meets the buyer's price as the buyer's deadline passes: the engine,
    // seeing both deadlines, breaks off; the seller cannot see the buyer's and proposes.
    const setup = bilateral(
      { price: { ip: 28, rp: 20, dl: 9, cr: 0.5 }, quantity: { ip: 1, rp: 1, dl: 9, cr: 0.5 } },
      { price: { ip: 20, rp: 23, dl: 6, cr: 0.5 }, quantity: { ip: 1, rp: 0, dl: 6, cr: 0.5 } },
      { maxRounds: 40 },
    );
    expect(negotiate(setup)).toMatchObject({ kind: 'no-agreement', brokenOffBy: 'buyer' });
    const { seller, buyer } = sessions(setup);
    const played = await play(seller, buyer);
    expect(played.messages.map((m) => m.kind).slice(-2)).toEqual(['proposal', 'break-off']);
    expect(played.buyer).toMatchObject({ kind: 'no-agreement', reason: 'deadline', by: 'self' });
    expect(played.seller).toMatchObject({
      kind: 'no-agreement',
      reason: 'deadline',
      by: 'counterpart',
    });
  });

  it.each<[string, (m: Payload<'agreement'>) => Payload<'agreement'>, RegExp]>([
    [
      'other terms',
      (m) => ({ ...m, agreement: { ...m.agreement, quantity: m.agreement.quantity + 1n } }),
      /differs from the one proposed/,
    ],
    [
      'a forged countersignature',
      (m) => ({ ...m, seller_signature: m.buyer_signature }),
      /is signed by .*, expected/,
    ],
    [
      'another signature of the proposer',
      (m) => ({ ...m, buyer_signature: m.seller_signature }),
      /another signature of this agent/,
    ],
    ['another utility', (m) => ({ ...m, utility: 'heat' }), /names heat/],
  ])(
    'the proposer refuses a countersigned agreement with %s and keeps waiting',
    async (_, bad, why) => {
      // In the case study the buyer accepts last: it proposes and the seller countersigns.
      const { seller, buyer } = sessions(bilateral(TABLE1.seller, TABLE1.buyer));
      const played = await play(seller, buyer, (m) =>
        m.kind === 'countersigned' ? { ...m, payload: bad(m.payload) } : m,
      );
      const genuine = played.messages.find((m) => m.kind === 'countersigned');
      if (genuine?.kind !== 'countersigned') throw new Error('nothing was countersigned');
      expect(played.seller?.kind).toBe('agreed');
      expect(played.buyer?.kind).toBe('proposed');
      const step = buyer.onCountersigned(bad(genuine.payload));
      expect(step.refused?.message).toMatch(why);
      expect(buyer.result?.kind).toBe('proposed');
      expect(buyer.onCountersigned(genuine.payload).result?.kind).toBe('agreed');
      expect(seller.onCountersigned(genuine.payload).refused?.message).toMatch(/did not propose/);
    },
  );

  it('times out and withdraws once, then ignores late messages', async () => {
    const { seller, buyer } = sessions(bilateral(TABLE1.seller, TABLE1.buyer));
    const opening = await seller.start();
    expect(seller.timeout().send).toEqual([{ kind: 'break-off', reason: 'timeout', round: 0 }]);
    expect(seller.withdraw().send).toEqual([]);
    const first = opening.send[0] as Extract<Outgoing, { kind: 'offer' }>;
    const answer = await buyer.onOffer(first.payload);
    expect(answer.send[0]?.kind).toBe('offer');
    const late = answer.send[0] as Extract<Outgoing, { kind: 'offer' }>;
    expect(await seller.onOffer(late.payload as Payload<'offer'>)).toEqual({ send: [] });
  });
});
