/**
 * Negotiation with peers over MQTT (seed section 4.3): discovery, then alternating signed offers.
 *
 *  1. A requester publishes a request for a utility (sell its surplus or cover its deficit).
 *  2. Peers with the opposite need reply with their will to negotiate before `respond_by`.
 *  3. The requester picks one (the closest quantity, then the first), confirms it by sending its
 *     own will back, and tells the rest it withdrew. The seller then opens.
 *  4. Offers, the proposed agreement and break-offs travel on the pair's topics, checked by a
 *     NegotiationSession; the side that countersigns hands the agreement on for the gateway and
 *     returns it to the proposer, which waits a round timeout for it (or for a refusal) before it
 *     settles for `proposed`.
 *
 * Every incoming message is decoded with the core catalogue; one that is malformed, addressed to
 * an unknown negotiation, or sent by someone other than the counterpart is counted and logged,
 * never thrown. A counterpart silent for a round timeout is broken off with.
 */
import { randomBytes } from 'node:crypto';
import { EipError, isEipError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { DigestSigner } from '../../core/messages/ecdsa.js';
import { type MarketDomain, negotiationId } from '../../core/messages/eip712.js';
import {
  createPublisher,
  decodeMessage,
  type Payload,
  type PublishOptions,
  subscription,
} from '../../core/messages/topics.js';
import { opponentOf, type Role } from '../../core/negotiation/issues.js';
import type { AgentSpec } from '../../core/negotiation/protocol.js';
import type { Milli } from '../../core/units.js';
import { getUtility, type UtilityId } from '../../core/utilities.js';
import { NegotiationSession, type SessionResult, type SessionStep } from './session.js';

/** The part of an MQTT.js client this needs. */
export interface NegotiationClient {
  publish(
    topic: string,
    payload: string,
    options: PublishOptions,
    callback?: (error?: Error) => void,
  ): unknown;
  subscribe(topics: string[], callback?: (error: Error | null) => void): unknown;
  on(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown;
  removeListener(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown;
}

export interface NegotiationRequest {
  readonly utility: UtilityId;
  readonly role: Role;
  readonly quantity: Milli;
  readonly spec: AgentSpec;
  readonly deliveryStartMs: number;
  readonly deliveryEndMs: number;
}

/** How this agent would answer another's request, or null to stay out of it. */
export type Responder = (
  request: Payload<'negotiationRequest'>,
) => { readonly spec: AgentSpec; readonly quantity: Milli } | null;

export interface NegotiatorOptions {
  readonly prosumer: string;
  readonly signer: DigestSigner;
  readonly client: NegotiationClient;
  /** The EIP-712 domain of each utility's market contract. */
  readonly markets: Readonly<Partial<Record<UtilityId, MarketDomain>>>;
  readonly responder: Responder;
  /** Called with every agreement this agent countersigned: it must reach the gateway. */
  readonly onAgreement: (signed: Payload<'agreement'>) => Promise<void>;
  readonly onOutcome?: (outcome: NegotiationOutcome) => void;
  readonly logger: Logger;
  readonly discoveryMs?: number;
  readonly roundTimeoutMs?: number;
  readonly maxRounds?: number;
  readonly agreementTtlS?: number;
  readonly now?: () => number;
}

export interface NegotiationOutcome {
  readonly negotiationId: string;
  readonly utility: UtilityId;
  readonly role: Role;
  /** Whether this agent sent the request. */
  readonly requester: boolean;
  /**
   * Whether the negotiation took place: false for an agent that answered a request and was not
   * chosen (or never heard back), which was never a party to it.
   */
  readonly negotiated: boolean;
  readonly counterpart: string | null;
  readonly result: SessionResult | { readonly kind: 'no-counterpart' };
  readonly rounds: number;
  /** Unix ms. */
  readonly startedAt: number;
  readonly durationMs: number;
}

export interface NegotiatorCounters {
  requests: number;
  responses: number;
  agreements: number;
  failed: number;
  invalidMessages: number;
}

interface Active {
  readonly id: string;
  readonly utility: UtilityId;
  readonly role: Role;
  readonly requester: boolean;
  readonly counterpart: string;
  readonly startedAt: number;
  /** Undefined while a responder waits to be chosen. */
  session?: NegotiationSession;
  readonly setup: () => NegotiationSession;
  timer?: NodeJS.Timeout;
  readonly settle: (outcome: NegotiationOutcome) => void;
}

interface Discovery {
  readonly request: Payload<'negotiationRequest'>;
  readonly wills: Payload<'willToNegotiate'>[];
}

export class Negotiator {
  readonly counters: NegotiatorCounters = {
    requests: 0,
    responses: 0,
    agreements: 0,
    failed: 0,
    invalidMessages: 0,
  };
  private readonly active = new Map<string, Active>();
  private readonly discoveries = new Map<string, Discovery>();
  /** Other plants' requests seen since the agent last took the counts, by utility and role. */
  private readonly requestsSeen = new Map<UtilityId, Record<Role, number>>();
  private readonly publish;
  private readonly listener = (topic: string, payload: Buffer) => this.receive(topic, payload);
  private readonly now: () => number;
  private readonly discoveryMs: number;
  private readonly roundTimeoutMs: number;
  private closed = false;

  constructor(private readonly options: NegotiatorOptions) {
    this.now = options.now ?? Date.now;
    this.discoveryMs = options.discoveryMs ?? 2000;
    this.roundTimeoutMs = options.roundTimeoutMs ?? 10_000;
    this.publish = createPublisher((topic, payload, publishOptions) =>
      options.client.publish(topic, payload, publishOptions, (error) => {
        if (error) options.logger.warn({ topic, err: error }, 'negotiation message not sent');
      }),
    );
  }

  /** Subscribes to requests for the utilities with a market, and to this agent's pair topics. */
  async start(): Promise<void> {
    const me = this.options.prosumer;
    const topics = [
      ...Object.keys(this.options.markets).map((utility) =>
        subscription('negotiationRequest', { utility }),
      ),
      subscription('willToNegotiate', { to: me }),
      subscription('offer', { to: me }),
      subscription('agreementProposal', { to: me }),
      subscription('breakOff', { to: me }),
      subscription('countersigned', { to: me }),
    ];
    this.options.client.on('message', this.listener);
    // Resolves once subscribed. Offline, or cut off before the SUBACK, MQTT.js subscribes again
    // when it reconnects (resubscribe), so a failure here is a warning, never a failed start.
    await new Promise<void>((resolve) =>
      this.options.client.subscribe(topics, (error) => {
        if (error) {
          this.options.logger.warn(
            { err: error },
            'negotiation topics not subscribed yet; they will be on reconnect',
          );
        }
        resolve();
      }),
    );
  }

  /** Whether a negotiation for this utility is under way (one at a time per utility). */
  busy(utility: UtilityId): boolean {
    return (
      [...this.active.values()].some((a) => a.utility === utility) ||
      [...this.discoveries.values()].some((d) => d.request.utility === utility)
    );
  }

  /**
   * Other plants' requests for `utility` seen since the last call, by the role they asked for,
   * and a fresh count from now: the agent takes them once per step, as the demand it saw.
   */
  takeRequestsSeen(utility: UtilityId): Record<Role, number> {
    const seen = this.requestsSeen.get(utility) ?? noRequestsSeen();
    this.requestsSeen.delete(utility);
    return seen;
  }

  /** Asks the park for a counterpart and negotiates with the best one that answers. */
  async request(request: NegotiationRequest): Promise<NegotiationOutcome> {
    const domain = this.domain(request.utility);
    const startedAt = this.now();
    const id = negotiationId(
      this.options.signer.address,
      request.utility,
      BigInt(`0x${randomBytes(8).toString('hex')}`),
    );
    const message: Payload<'negotiationRequest'> = {
      negotiation_id: id,
      utility: request.utility,
      prosumer: this.options.prosumer,
      address: this.options.signer.address,
      role: request.role,
      quantity_milli: request.quantity,
      delivery_start_ms: request.deliveryStartMs,
      delivery_end_ms: request.deliveryEndMs,
      respond_by_ms: startedAt + this.discoveryMs,
    };
    const discovery: Discovery = { request: message, wills: [] };
    this.discoveries.set(id, discovery);
    this.counters.requests++;
    this.publish(
      'negotiationRequest',
      { utility: request.utility, prosumer: this.options.prosumer },
      message,
    );
    await new Promise((resolve) => setTimeout(resolve, this.discoveryMs).unref());
    this.discoveries.delete(id);

    const chosen = choose(discovery.wills, request.quantity);
    for (const will of discovery.wills) {
      if (will === chosen) continue;
      this.publish(
        'breakOff',
        { to: will.prosumer, from: this.options.prosumer },
        { negotiation_id: id, prosumer: this.options.prosumer, reason: 'withdrawn', round: 0 },
      );
    }
    if (chosen === undefined || this.closed) {
      const outcome: NegotiationOutcome = {
        negotiationId: id,
        utility: request.utility,
        role: request.role,
        requester: true,
        negotiated: false,
        counterpart: null,
        result: { kind: 'no-counterpart' },
        rounds: 0,
        startedAt,
        durationMs: this.now() - startedAt,
      };
      this.options.onOutcome?.(outcome);
      return outcome;
    }
    return new Promise<NegotiationOutcome>((settle) => {
      const active = this.track({
        id,
        utility: request.utility,
        role: request.role,
        requester: true,
        counterpart: chosen.prosumer,
        startedAt,
        settle,
        setup: () =>
          this.session(domain, {
            id,
            utility: request.utility,
            role: request.role,
            spec: request.spec,
            counterpart: chosen.address,
            startMs: request.deliveryStartMs,
            endMs: request.deliveryEndMs,
          }),
      });
      active.session = active.setup();
      // The confirmation: our own will, sent back to the one we chose.
      this.publish(
        'willToNegotiate',
        { to: chosen.prosumer, from: this.options.prosumer },
        {
          negotiation_id: id,
          prosumer: this.options.prosumer,
          address: this.options.signer.address,
          quantity_milli: request.quantity,
        },
      );
      void this.run(active, (session) => session.start());
    });
  }

  /** Withdraws from every negotiation and stops listening. */
  async close(): Promise<void> {
    this.closed = true;
    this.options.client.removeListener('message', this.listener);
    for (const active of [...this.active.values()]) {
      await this.run(active, (session) => session.withdraw());
      this.end(
        active,
        active.session?.result ?? { kind: 'no-agreement', reason: 'withdrawn', by: 'self' },
      );
    }
  }

  private session(
    domain: MarketDomain,
    terms: {
      id: string;
      utility: UtilityId;
      role: Role;
      spec: AgentSpec;
      counterpart: string;
      startMs: number;
      endMs: number;
    },
  ): NegotiationSession {
    return new NegotiationSession(
      {
        negotiationId: terms.id,
        utility: getUtility(terms.utility),
        domain,
        role: terms.role,
        spec: terms.spec,
        counterpart: terms.counterpart,
        deliveryStartS: BigInt(Math.floor(terms.startMs / 1000)),
        deliveryEndS: BigInt(Math.floor(terms.endMs / 1000)),
        maxRounds: this.options.maxRounds ?? 1000,
        agreementTtlS: this.options.agreementTtlS ?? 3600,
      },
      this.options.signer,
    );
  }

  private domain(utility: UtilityId): MarketDomain {
    const domain = this.options.markets[utility];
    if (!domain) {
      throw new EipError('INVALID_ARGUMENT', `no market contract is configured for ${utility}`);
    }
    return domain;
  }

  private track(entry: Omit<Active, 'timer' | 'session'>): Active {
    const active: Active = { ...entry };
    this.active.set(entry.id, active);
    this.arm(active);
    return active;
  }

  /** (Re)starts the counterpart's clock: silence for a round timeout ends the negotiation. */
  private arm(active: Active): void {
    clearTimeout(active.timer);
    active.timer = setTimeout(() => {
      const result = active.session?.result;
      // Neither countersigned nor refused in time: the proposal stands, the gateway will tell.
      if (result?.kind === 'proposed') {
        this.end(active, result);
        return;
      }
      if (!active.session) {
        this.end(active, { kind: 'no-agreement', reason: 'timeout', by: 'self' });
        return;
      }
      void this.run(active, (session) => session.timeout());
    }, this.roundTimeoutMs).unref();
  }

  private receive(topic: string, raw: Buffer): void {
    let decoded: ReturnType<typeof decodeMessage>;
    try {
      decoded = decodeMessage(topic, raw);
    } catch (error) {
      this.invalid(error, topic);
      return;
    }
    const from = decoded.params.from;
    if (decoded.name === 'negotiationRequest') this.considerRequest(decoded.payload);
    else if (decoded.name === 'willToNegotiate') this.onWill(decoded.payload);
    else if (decoded.name === 'offer') {
      const offer = decoded.payload;
      this.dispatch(offer.offer.negotiationId, from, topic, (s) => s.onOffer(offer));
    } else if (decoded.name === 'agreementProposal') {
      const proposal = decoded.payload;
      this.dispatch(proposal.agreement.negotiationId, from, topic, (s) => s.onProposal(proposal));
    } else if (decoded.name === 'countersigned') {
      const signed = decoded.payload;
      this.dispatch(signed.agreement.negotiationId, from, topic, (s) => s.onCountersigned(signed));
    } else if (decoded.name === 'breakOff') this.onBreakOff(decoded.payload, from, topic);
  }

  private onBreakOff(message: Payload<'breakOff'>, from: string | undefined, topic: string): void {
    const active = this.active.get(message.negotiation_id);
    if (active && !active.session && active.counterpart === from) {
      // Not chosen: the requester went with someone else.
      this.end(active, { kind: 'no-agreement', reason: message.reason, by: 'counterpart' });
      return;
    }
    this.dispatch(message.negotiation_id, from, topic, (s) => s.onBreakOff(message));
  }

  private considerRequest(request: Payload<'negotiationRequest'>): void {
    if (this.closed || request.prosumer === this.options.prosumer) return;
    // Counted before it is ignored as late or while busy: the demand is there all the same.
    const seen = this.requestsSeen.get(request.utility) ?? noRequestsSeen();
    seen[request.role]++;
    this.requestsSeen.set(request.utility, seen);
    if (this.now() > request.respond_by_ms || this.busy(request.utility)) return;
    const answer = this.options.responder(request);
    if (answer === null) return;
    let domain: MarketDomain;
    try {
      domain = this.domain(request.utility);
    } catch {
      return;
    }
    this.counters.responses++;
    const role = opponentOf(request.role);
    // Waits to be chosen until the discovery closes, then for one round timeout more.
    this.track({
      id: request.negotiation_id,
      utility: request.utility,
      role,
      requester: false,
      counterpart: request.prosumer,
      startedAt: this.now(),
      settle: () => undefined,
      setup: () =>
        this.session(domain, {
          id: request.negotiation_id,
          utility: request.utility,
          role,
          spec: answer.spec,
          counterpart: request.address,
          startMs: request.delivery_start_ms,
          endMs: request.delivery_end_ms,
        }),
    });
    this.publish(
      'willToNegotiate',
      { to: request.prosumer, from: this.options.prosumer },
      {
        negotiation_id: request.negotiation_id,
        prosumer: this.options.prosumer,
        address: this.options.signer.address,
        quantity_milli: answer.quantity,
      },
    );
  }

  private onWill(will: Payload<'willToNegotiate'>): void {
    const discovery = this.discoveries.get(will.negotiation_id);
    if (discovery) {
      if (this.now() <= discovery.request.respond_by_ms) discovery.wills.push(will);
      return;
    }
    // A will sent back by a requester we answered: we were chosen.
    const active = this.active.get(will.negotiation_id);
    if (active && !active.session && active.counterpart === will.prosumer) {
      active.session = active.setup();
      this.arm(active);
      void this.run(active, (session) => session.start());
    }
  }

  private dispatch(
    id: string,
    from: string | undefined,
    topic: string,
    handle: (session: NegotiationSession) => SessionStep,
  ): void {
    const active = this.active.get(id);
    // The requester's first offer may overtake its confirmation: it confirms just the same.
    if (active && !active.session && active.counterpart === from) active.session = active.setup();
    if (!active?.session || active.counterpart !== from) {
      this.invalid(
        new EipError(
          'INVALID_MESSAGE',
          `${topic}: no negotiation ${id.slice(0, 10)}... is under way with "${from}"`,
        ),
        topic,
      );
      return;
    }
    this.arm(active);
    void this.run(active, handle);
  }

  private async run(
    active: Active,
    handle: (session: NegotiationSession) => SessionStep,
  ): Promise<void> {
    const session = active.session;
    if (!session) return;
    let step: SessionStep;
    try {
      step = handle(session);
    } catch (error) {
      // Signing failed or a bug: end the negotiation rather than leave the peer hanging.
      this.options.logger.error({ err: error, negotiation: active.id }, 'negotiation step failed');
      step = session.withdraw();
    }
    const params = { to: active.counterpart, from: this.options.prosumer };
    for (const out of step.send) {
      if (out.kind === 'offer') this.publish('offer', params, out.payload);
      else if (out.kind === 'proposal') this.publish('agreementProposal', params, out.payload);
      else if (out.kind === 'countersigned') this.publish('countersigned', params, out.payload);
      else
        this.publish('breakOff', params, {
          negotiation_id: active.id,
          prosumer: this.options.prosumer,
          reason: out.reason,
          round: out.round,
        });
    }
    if (step.refused) this.invalid(step.refused, active.id);
    const result = step.result;
    // A proposal waits for the countersignature or a refusal, on the counterpart's clock.
    if (!result || result.kind === 'proposed') return;
    if (result.kind === 'no-agreement' && result.error) this.invalid(result.error, active.id);
    // The countersigner hands the agreement on; the proposer's copy is for its own record.
    if (result.kind === 'agreed' && result.countersignedBy === 'self') {
      try {
        await this.options.onAgreement(result.signed);
      } catch (error) {
        this.options.logger.error(
          { err: error, negotiation: active.id },
          'agreement could not be stored for the gateway',
        );
      }
    }
    this.end(active, result);
  }

  private end(active: Active, result: SessionResult): void {
    if (this.active.get(active.id) !== active) return;
    clearTimeout(active.timer);
    this.active.delete(active.id);
    if (result.kind === 'no-agreement') this.counters.failed++;
    else this.counters.agreements++;
    const outcome: NegotiationOutcome = {
      negotiationId: active.id,
      utility: active.utility,
      role: active.role,
      requester: active.requester,
      negotiated: active.session !== undefined,
      counterpart: active.counterpart,
      result,
      rounds: active.session?.rounds ?? 0,
      startedAt: active.startedAt,
      durationMs: this.now() - active.startedAt,
    };
    this.options.logger.info(
      {
        negotiation: active.id,
        utility: active.utility,
        role: active.role,
        counterpart: active.counterpart,
        outcome: result.kind,
        reason: result.kind === 'no-agreement' ? result.reason : undefined,
        rounds: outcome.rounds,
      },
      'negotiation ended',
    );
    this.options.onOutcome?.(outcome);
    active.settle(outcome);
  }

  private invalid(error: unknown, where: string): void {
    this.counters.invalidMessages++;
    this.options.logger.warn(
      { code: isEipError(error) ? error.code : undefined, where },
      (error as Error).message,
    );
  }
}

/** The count of requests seen before any has been. */
export function noRequestsSeen(): Record<Role, number> {
  return { seller: 0, buyer: 0 };
}

/** The will whose quantity is closest to ours; the first to answer breaks a tie. */
function choose(
  wills: readonly Payload<'willToNegotiate'>[],
  quantity: number,
): Payload<'willToNegotiate'> | undefined {
  let best: Payload<'willToNegotiate'> | undefined;
  for (const will of wills) {
    const gap = Math.abs(will.quantity_milli - quantity);
    if (best === undefined || gap < Math.abs(best.quantity_milli - quantity)) best = will;
  }
  return best;
}

/**
 * The report of an outcome for the gateway (the park's agreement rate), or null for a request
 * this agent answered without being chosen: it was never a party, and the requester reports it.
 */
export function outcomeMessage(
  prosumer: string,
  outcome: NegotiationOutcome,
): Payload<'negotiationOutcome'> | null {
  if (!outcome.requester && !outcome.negotiated) return null;
  const { result } = outcome;
  const failed = result.kind === 'no-agreement';
  return {
    prosumer,
    negotiation_id: outcome.negotiationId,
    utility: outcome.utility,
    role: outcome.role,
    requester: outcome.requester,
    counterpart: outcome.counterpart,
    outcome: result.kind,
    reason: failed ? result.reason : null,
    ended_by: failed ? result.by : null,
    rounds: outcome.rounds,
    started_at_ms: outcome.startedAt,
    ended_at_ms: outcome.startedAt + outcome.durationMs,
  };
}
