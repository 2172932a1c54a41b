/**
 * One negotiation between this agent and one counterpart, played over messages with exactly the
 * core engine's rules (core/negotiation/protocol.ts), so two agents over MQTT reach the agreement
 * `negotiate()` computes for the same psi.
 *
 * The seller opens (as Prosumer 0 does in the seed). The seller moves at rounds 0, 1, 2 ...; the
 * buyer answers each at the same round. Every move is an EIP-712 signed offer whose `previous`
 * names the offer before it, so the last one's hash commits to the whole transcript. The move that
 * settles the last open issue is the acceptance: its proposer signs the agreement and sends both
 * in one message; the other side checks the terms against the transcript, countersigns, hands
 * the agreement on for the gateway and returns it to the proposer. The proposer's end stays
 * `proposed` until then: the counterpart may still refuse (its own deadline may have passed as the
 * proposal crossed it, which the engine, seeing both deadlines, would have broken off on).
 *
 * A received offer settles an issue where its value equals what this agent last offered: an agent
 * that counters with the opponent's own value would have accepted it under the engine's rule, so
 * the inference is exact and no "accepted" field needs signing. Deadlines: each agent checks its
 * own before it moves, and the responder also before it honours an opener's move, because the
 * engine checks both at the start of a round and a party that breaks off withdraws its offer.
 *
 * No I/O: the signer is injected, messages in and out are values. This is what makes it testable
 * against the engine move for move.
 */
import { randomBytes } from 'node:crypto';
import { getAddress } from 'ethers/address';
import { ZeroHash } from 'ethers/constants';
import { EipError, isEipError } from '../../core/errors.js';
import { type DigestSigner, signDigest } from '../../core/messages/ecdsa.js';
import {
  type Agreement,
  assertDigestSignedBy,
  digestOf,
  type MarketDomain,
  offerStruct,
  type SignedKind,
  structHash,
} from '../../core/messages/eip712.js';
import type { Payload } from '../../core/messages/topics.js';
import { ISSUES, type Issue, opponentOf, type Role } from '../../core/negotiation/issues.js';
import {
  type AgentSpec,
  type Bundle,
  breaksOff,
  makeParty,
  move,
  type Party,
  type Settlement,
} from '../../core/negotiation/protocol.js';
import {
  priceFromBaseUnits,
  quantityBaseUnits,
  quantityFromBaseUnits,
  unitPriceBaseUnits,
} from '../../core/units.js';
import type { Utility } from '../../core/utilities.js';

export interface SessionSetup {
  readonly negotiationId: string;
  readonly utility: Utility;
  readonly domain: MarketDomain;
  readonly role: Role;
  /** This agent's psi on price (tokens per unit) and quantity (units). */
  readonly spec: AgentSpec;
  readonly counterpart: string;
  readonly deliveryStartS: bigint;
  readonly deliveryEndS: bigint;
  readonly maxRounds: number;
  /** How long the signatures on an agreement stay valid for the gateway to submit it. */
  readonly agreementTtlS: number;
  readonly nowS?: () => number;
}

export type BreakOffReason = Payload<'breakOff'>['reason'];

export type Outgoing =
  | { readonly kind: 'offer'; readonly payload: Payload<'offer'> }
  | { readonly kind: 'proposal'; readonly payload: Payload<'agreementProposal'> }
  | { readonly kind: 'countersigned'; readonly payload: Payload<'agreement'> }
  | { readonly kind: 'break-off'; readonly reason: BreakOffReason; readonly round: number };

export type SessionResult =
  /**
   * This agent accepted and signed; the counterpart countersigns and publishes. Not final: the
   * counterpart's countersignature turns it into `agreed`, its break-off into `no-agreement`.
   */
  | {
      readonly kind: 'proposed';
      readonly agreement: Agreement;
      readonly hash: string;
      readonly signature: string;
    }
  /** Both signed: the countersigner hands it to the gateway and returns it to the proposer. */
  | {
      readonly kind: 'agreed';
      readonly signed: Payload<'agreement'>;
      readonly countersignedBy: 'self' | 'counterpart';
    }
  | {
      readonly kind: 'no-agreement';
      readonly reason: BreakOffReason;
      readonly by: 'self' | 'counterpart';
      /** Why a message from the counterpart was refused. */
      readonly error?: EipError;
    };

export interface SessionStep {
  readonly send: readonly Outgoing[];
  readonly result?: SessionResult;
  /** A message refused without ending the negotiation, to be counted. */
  readonly refused?: EipError;
}

const NOTHING: SessionStep = { send: [] };
/** Slack on the counterpart's choice of our signature deadline: clocks differ a little. */
const DEADLINE_SLACK_S = 60;

export class NegotiationSession {
  private readonly me: Party;
  private readonly seller: string;
  private readonly buyer: string;
  private readonly counterpart: string;
  private readonly settled: Partial<Record<Issue, Settlement>> = {};
  private readonly transcript: Payload<'offer'>[] = [];
  private head = ZeroHash;
  private myLast: Bundle | null = null;
  /** The last round this agent moved in; -1 before its first move. */
  private myRound = -1;
  private ended: SessionResult | undefined;
  private readonly nowS: () => number;

  constructor(
    private readonly setup: SessionSetup,
    private readonly signer: DigestSigner,
  ) {
    this.me = makeParty(setup.role, setup.spec, {
      price: setup.utility.price_tick,
      quantity: setup.utility.quantity_tick,
    });
    const self = getAddress(signer.address);
    this.counterpart = getAddress(setup.counterpart);
    this.seller = setup.role === 'seller' ? self : this.counterpart;
    this.buyer = setup.role === 'buyer' ? self : this.counterpart;
    this.nowS = setup.nowS ?? (() => Math.floor(Date.now() / 1000));
  }

  get role(): Role {
    return this.setup.role;
  }

  get result(): SessionResult | undefined {
    return this.ended;
  }

  /** Rounds played so far (the last round this agent moved in, plus one). */
  get rounds(): number {
    return this.myRound + 1;
  }

  /** The seller's opening offer; the buyer waits for it. */
  start(): SessionStep {
    if (this.setup.role !== 'seller' || this.myRound >= 0) return NOTHING;
    return this.moveAt(0, null);
  }

  onOffer(message: Payload<'offer'>): SessionStep {
    return this.receive(message, null);
  }

  onProposal(message: Payload<'agreementProposal'>): SessionStep {
    return this.receive(message.acceptance, message);
  }

  /** The counterpart's countersignature on what this agent proposed. */
  onCountersigned(message: Payload<'agreement'>): SessionStep {
    const proposed = this.ended;
    const refuse = (problem: string): SessionStep => ({
      send: [],
      refused: new EipError('INVALID_MESSAGE', `countersigned agreement ${problem}`),
    });
    if (proposed?.kind !== 'proposed') return refuse('for an agreement this agent did not propose');
    if (message.utility !== this.setup.utility.id) return refuse(`names ${message.utility}`);
    let hash: string;
    try {
      hash = structHash('Agreement', message.agreement);
    } catch (error) {
      return { send: [], refused: new EipError('INVALID_MESSAGE', (error as Error).message) };
    }
    if (hash !== proposed.hash) return refuse('differs from the one proposed');
    const [own, theirs] =
      this.setup.role === 'seller'
        ? [message.seller_signature, message.buyer_signature]
        : [message.buyer_signature, message.seller_signature];
    if (own !== proposed.signature) return refuse('carries another signature of this agent');
    try {
      this.verify('Agreement', hash, theirs);
    } catch (error) {
      return { send: [], refused: error as EipError };
    }
    return this.finish({ kind: 'agreed', signed: message, countersignedBy: 'counterpart' });
  }

  onBreakOff(message: Payload<'breakOff'>): SessionStep {
    // After proposing, a break-off is the counterpart refusing to countersign.
    if (this.ended && this.ended.kind !== 'proposed') return NOTHING;
    return this.finish({ kind: 'no-agreement', reason: message.reason, by: 'counterpart' });
  }

  /** The counterpart went quiet: give up on it. */
  timeout(): SessionStep {
    if (this.ended) return NOTHING;
    return this.breakOff('timeout', this.myRound);
  }

  /** This agent withdraws (shutdown, or its balance changed). */
  withdraw(): SessionStep {
    if (this.ended) return NOTHING;
    return this.breakOff('withdrawn', this.myRound);
  }

  private receive(
    message: Payload<'offer'>,
    proposal: Payload<'agreementProposal'> | null,
  ): SessionStep {
    if (this.ended) return NOTHING;
    const round = this.setup.role === 'seller' ? this.myRound : this.myRound + 1;
    let theirs: Bundle;
    let hash: string;
    try {
      ({ theirs, hash } = this.checkOffer(message, round));
    } catch (error) {
      return this.refuse(error, round);
    }
    // The engine checks both parties' deadlines before the opener moves; the responder's check
    // for this round happens here, before it honours the opener's move.
    if (this.setup.role === 'buyer') {
      const stop = this.stopReason(round);
      if (stop) return this.breakOff(stop, round);
    }
    const theirRole = opponentOf(this.setup.role);
    for (const issue of ISSUES) {
      if (this.settled[issue] === undefined && this.myLast?.[issue] === theirs[issue]) {
        this.settled[issue] = { round, by: theirRole, value: theirs[issue] };
      }
    }
    this.transcript.push(message);
    this.head = hash;
    const acceptance = ISSUES.every((issue) => this.settled[issue] !== undefined);
    if (acceptance !== (proposal !== null)) {
      const problem = acceptance
        ? `round ${round} settles every issue but came without the signed agreement`
        : `the agreement proposed at round ${round} leaves an issue open`;
      return this.refuse(new EipError('INVALID_MESSAGE', problem), round);
    }
    if (proposal) return this.countersign(proposal, round);
    return this.moveAt(this.setup.role === 'seller' ? round + 1 : round, theirs);
  }

  /** Checks a received offer; returns its terms in exact thousandths and its struct hash. */
  private checkOffer(message: Payload<'offer'>, round: number): { theirs: Bundle; hash: string } {
    const offer = message.offer;
    const fail = (problem: string): never => {
      throw new EipError('INVALID_MESSAGE', `offer at round ${offer.round}: ${problem}`);
    };
    if (message.utility !== this.setup.utility.id) fail(`utility is ${message.utility}`);
    if (offer.negotiationId !== this.setup.negotiationId) fail('names another negotiation');
    if (getAddress(offer.seller) !== this.seller || getAddress(offer.buyer) !== this.buyer)
      fail('names other parties');
    if (getAddress(offer.proposer) !== this.counterpart) fail('is not proposed by the counterpart');
    if (offer.round !== round) fail(`expected round ${round}`);
    if (offer.previous !== this.head) fail('does not follow the previous offer');
    const hash = structHash('Offer', offer);
    this.verify('Offer', hash, message.signature);
    const theirs: Bundle = {
      price: priceFromBaseUnits(offer.unitPrice),
      quantity: quantityFromBaseUnits(offer.quantity),
    };
    for (const issue of ISSUES) {
      const done = this.settled[issue];
      if (done !== undefined && theirs[issue] !== done.value) fail(`reopens the settled ${issue}`);
    }
    return { theirs, hash };
  }

  private verify(kind: SignedKind, hash: string, signature: string): void {
    assertDigestSignedBy(kind, digestOf(this.setup.domain, hash), signature, this.counterpart);
  }

  private stopReason(round: number): BreakOffReason | null {
    if (breaksOff(this.me, round, this.settled)) return 'deadline';
    if (round >= this.setup.maxRounds) return 'round-limit';
    return null;
  }

  private moveAt(round: number, theirs: Bundle | null): SessionStep {
    const stop = this.stopReason(round);
    if (stop) return this.breakOff(stop, round);
    const step = move(this.me, round, theirs, this.settled);
    this.myRound = round;
    this.myLast = step.bundle;
    const offer = offerStruct({
      negotiationId: this.setup.negotiationId,
      seller: this.seller,
      buyer: this.buyer,
      proposer: this.signer.address,
      round,
      quantity: step.bundle.quantity,
      price: step.bundle.price,
      previous: this.head,
    });
    const hash = structHash('Offer', offer);
    const signed: Payload<'offer'> = {
      utility: this.setup.utility.id,
      offer,
      signature: this.sign(hash),
    };
    this.transcript.push(signed);
    this.head = hash;
    if (!step.finished) return { send: [{ kind: 'offer', payload: signed }] };

    const now = this.nowS();
    const deadline = BigInt(now + this.setup.agreementTtlS);
    const agreement: Agreement = {
      negotiationId: this.setup.negotiationId,
      seller: this.seller,
      buyer: this.buyer,
      quantity: quantityBaseUnits(step.bundle.quantity),
      unitPrice: unitPriceBaseUnits(step.bundle.price),
      deliveryStart: this.setup.deliveryStartS,
      deliveryEnd: this.setup.deliveryEndS,
      transcriptHash: this.head,
      sellerNonce: randomNonce(),
      sellerDeadline: deadline,
      buyerNonce: randomNonce(),
      buyerDeadline: deadline,
    };
    const agreementHash = structHash('Agreement', agreement);
    const proposal: Payload<'agreementProposal'> = {
      utility: this.setup.utility.id,
      agreement,
      signature: this.sign(agreementHash),
      acceptance: signed,
    };
    this.ended = {
      kind: 'proposed',
      agreement,
      hash: agreementHash,
      signature: proposal.signature,
    };
    return { send: [{ kind: 'proposal', payload: proposal }], result: this.ended };
  }

  private countersign(proposal: Payload<'agreementProposal'>, round: number): SessionStep {
    const agreement = proposal.agreement;
    const accepted = proposal.acceptance.offer;
    const mine = this.setup.role === 'seller' ? agreement.sellerDeadline : agreement.buyerDeadline;
    const now = this.nowS();
    const problems = [
      agreement.negotiationId !== this.setup.negotiationId && 'names another negotiation',
      (getAddress(agreement.seller) !== this.seller ||
        getAddress(agreement.buyer) !== this.buyer) &&
        'names other parties',
      (agreement.quantity !== accepted.quantity || agreement.unitPrice !== accepted.unitPrice) &&
        'terms differ from the acceptance',
      (agreement.deliveryStart !== this.setup.deliveryStartS ||
        agreement.deliveryEnd !== this.setup.deliveryEndS) &&
        'delivery window differs from the request',
      agreement.transcriptHash !== this.head && 'transcript hash is not the last offer',
      (mine < BigInt(now) || mine > BigInt(now + this.setup.agreementTtlS + DEADLINE_SLACK_S)) &&
        `our signature deadline ${mine} is outside now..now+${this.setup.agreementTtlS} s`,
    ].filter((p): p is string => typeof p === 'string');
    let agreementHash: string;
    try {
      if (problems.length) throw new EipError('INVALID_MESSAGE', problems.join('; '));
      agreementHash = structHash('Agreement', agreement);
      this.verify('Agreement', agreementHash, proposal.signature);
    } catch (error) {
      return this.refuse(error, round);
    }
    const own = this.sign(agreementHash);
    const fromSeller = this.setup.role === 'buyer';
    const signed: Payload<'agreement'> = {
      utility: this.setup.utility.id,
      agreement,
      seller_signature: fromSeller ? proposal.signature : own,
      buyer_signature: fromSeller ? own : proposal.signature,
      transcript: [...this.transcript],
    };
    this.ended = { kind: 'agreed', signed, countersignedBy: 'self' };
    return { send: [{ kind: 'countersigned', payload: signed }], result: this.ended };
  }

  private sign(hash: string): string {
    return signDigest(this.signer, digestOf(this.setup.domain, hash));
  }

  private refuse(error: unknown, round: number): SessionStep {
    const refused = isEipError(error)
      ? error
      : new EipError('INVALID_MESSAGE', (error as Error).message, { cause: error });
    this.ended = { kind: 'no-agreement', reason: 'invalid-offer', by: 'self', error: refused };
    return {
      send: [{ kind: 'break-off', reason: 'invalid-offer', round: Math.max(round, 0) }],
      result: this.ended,
    };
  }

  private breakOff(reason: BreakOffReason, round: number): SessionStep {
    this.ended = { kind: 'no-agreement', reason, by: 'self' };
    return { send: [{ kind: 'break-off', reason, round: Math.max(round, 0) }], result: this.ended };
  }

  private finish(result: SessionResult): SessionStep {
    this.ended = result;
    return { send: [], result };
  }
}

/** 128 random bits: the contract keeps a used-nonce bitmap, so a nonce must never repeat. */
export function randomNonce(): bigint {
  return BigInt(`0x${randomBytes(16).toString('hex')}`);
}
