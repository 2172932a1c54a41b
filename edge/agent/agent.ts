/**
 * The edge agent: reads the plant's meters, keeps each utility's balance per time step, asks its
 * policy what to do, negotiates with peers, and sends readings and agreements to the gateway
 * through the durable outbox. Everything it talks to is passed in or built from the config here;
 * `eip-edge run` only loads the config and wires signals.
 *
 * Meters are polled before the identity is unlocked (a keystore's scrypt takes seconds on a Pi),
 * so the first reading is on disk within a second of start; negotiation starts once the key is in.
 */
import { resolve } from 'node:path';
import type { MqttClient } from 'mqtt';
import { parseHostPort } from '../../core/cli.js';
import { EipError, isEipError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { DigestSigner } from '../../core/messages/ecdsa.js';
import { signDigest } from '../../core/messages/ecdsa.js';
import { type MarketDomain, marketDomain, typedDataDigest } from '../../core/messages/eip712.js';
import { ID_PATTERN } from '../../core/messages/schemas.js';
import {
  decodeMessage,
  encodePayload,
  type Payload,
  subscription,
  type TopicName,
  topic,
} from '../../core/messages/topics.js';
import type { Role } from '../../core/negotiation/issues.js';
import { type Observation, type Policy, RulePolicy } from '../../core/policy/policy.js';
import { type Milli, milli, priceFromBaseUnits, unitPriceBaseUnits } from '../../core/units.js';
import { getUtility, type UtilityId } from '../../core/utilities.js';
import { BalanceTracker, type CounterValue, type StepBalance } from '../balance/balance.js';
import { planReadings, unitFactor } from '../config/load.js';
import type { EdgeConfig, MeterConfig, UtilityPlan } from '../config/schema.js';
import { DeliveryReporter, type Way } from '../delivery/reporter.js';
import { MqttMeterSource } from '../meters/mqtt-meter.js';
import { P1Source, p1Line } from '../meters/p1-reader.js';
import { Poller } from '../meters/poller.js';
import { loadProfile } from '../meters/profiles.js';
import { Negotiator, noRequestsSeen, outcomeMessage } from '../negotiation/negotiator.js';
import { randomNonce } from '../negotiation/session.js';
import { Forwarder } from '../outbox/forwarder.js';
import { MqttPublisher } from '../outbox/mqtt-publish.js';
import { Outbox } from '../outbox/outbox.js';
import { Bus } from './bus.js';
import { type HealthServer, Metrics, startHealthServer } from './health.js';

export interface AgentDeps {
  readonly config: EdgeConfig;
  /** Relative paths in the config (keystore, data_dir) start here. */
  readonly baseDir: string;
  readonly logger: Logger;
  /** Connects to the broker; MQTT.js's `connect` with the agent's options. */
  readonly connectMqtt: (options: { will: { topic: string; payload: string } }) => MqttClient;
  readonly identity: () => Promise<DigestSigner>;
  /** The metering key that signs delivery reports; asked only when a utility has `delivery`. */
  readonly meterIdentity?: () => Promise<DigestSigner>;
  /**
   * A policy per utility: a learned one as `loadConfig` built it from its file; by default the
   * rule-based one of the config.
   */
  readonly policies?: Partial<Record<UtilityId, Policy>>;
  readonly now?: () => number;
  readonly softwareVersion?: string;
}

interface Latest {
  readonly value: number;
  readonly unit: string;
  readonly stale: boolean;
  readonly measuredAt: number;
}

interface UtilityState {
  readonly id: UtilityId;
  readonly tracker: BalanceTracker;
  readonly policy: Policy;
  /** `deadline_s` in whole steps; null without one. */
  readonly deadlineSteps: number | null;
  /** The last step's balance; undefined before the first. */
  balance: StepBalance | undefined;
  /** The step the current surplus or deficit was first seen in; null while balanced. */
  imbalance: { readonly since: number; readonly surplus: boolean } | null;
  failuresInRow: number;
  /** The unit price of this plant's last agreement for the utility; null before one. */
  recentPrice: Milli | null;
  /** Other plants' requests for the utility seen in the last step, by the role they asked for. */
  requestsSeen: Readonly<Record<Role, number>>;
}

export class EdgeAgent {
  readonly metrics = new Metrics();
  private readonly latest = new Map<string, Latest>();
  /** Each meter's utility, worked out once at start (readings arrive on a hot path). */
  private readonly meterUtility = new Map<string, UtilityId>();
  private readonly now: () => number;
  private readonly counters = {
    readings: 0,
    steps: 0,
    providerTrades: 0,
    balanceUnknown: 0,
    deliveries: 0,
  };
  private readonly negotiationOutcomes = new Map<string, number>();
  /** Refusals the gateway sent back, by error code. */
  private readonly gatewayRefusals = new Map<string, number>();
  private readonly buses = new Map<string, Bus>();
  private readonly pollers: { readonly poller: Poller; readonly meters: Map<string, string> }[] =
    [];
  private readonly p1: { readonly id: string; readonly source: P1Source }[] = [];
  private mqttMeters: MqttMeterSource | undefined;
  private readonly utilities: UtilityState[] = [];
  private outbox: Outbox | undefined;
  private forwarder: Forwarder | undefined;
  private client: MqttClient | undefined;
  private negotiator: Negotiator | undefined;
  private reporter: DeliveryReporter | undefined;
  /** The EIP-712 domain of each utility's market, once the identity is unlocked. */
  private markets: Partial<Record<UtilityId, MarketDomain>> = {};
  /** `METER.QUANTITY` -> the utility and way of delivery it measures. */
  private readonly deliveryRefs = new Map<string, { utility: UtilityId; way: Way }>();
  private health: HealthServer | undefined;
  private wallet: DigestSigner | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private step = 0;
  private firstReadingAt: number | undefined;
  private readonly startedAt: number;
  private stopping = false;
  private polling: Promise<void> = Promise.resolve();

  constructor(private readonly deps: AgentDeps) {
    this.now = deps.now ?? Date.now;
    this.startedAt = this.now();
    for (const [utility, plan] of Object.entries(deps.config.utilities)) {
      for (const [ref] of planReadings(plan)) {
        const meter = ref.slice(0, ref.indexOf('.'));
        if (!this.meterUtility.has(meter)) this.meterUtility.set(meter, utility as UtilityId);
      }
      for (const way of ['export', 'import'] as const) {
        const ref = plan.delivery?.[way];
        if (ref) this.deliveryRefs.set(ref, { utility: utility as UtilityId, way });
      }
      this.utilities.push(this.utilityState(utility as UtilityId, plan));
    }
  }

  get address(): string | undefined {
    return this.wallet?.address;
  }

  /** When the first reading was stored, in ms since start; undefined before. */
  get firstReadingMs(): number | undefined {
    return this.firstReadingAt === undefined ? undefined : this.firstReadingAt - this.startedAt;
  }

  get healthUrl(): string | undefined {
    return this.health?.url;
  }

  async start(): Promise<void> {
    const { config, logger } = this.deps;
    this.outbox = await Outbox.open({
      dir: resolve(this.deps.baseDir, config.data_dir, 'outbox'),
      maxBytes: config.outbox.max_mb * 1024 * 1024,
      logger,
    });
    const status = (state: 'online' | 'offline') =>
      encodePayload('agentStatus', {
        prosumer: config.prosumer,
        state,
        at_ms: this.now(),
        ...(this.deps.softwareVersion && { software_version: this.deps.softwareVersion }),
      });
    const statusTopic = topic('agentStatus', { prosumer: config.prosumer });
    const client = this.deps.connectMqtt({
      will: { topic: statusTopic, payload: status('offline') },
    });
    this.client = client;
    const publisher = new MqttPublisher(client);
    const forwarder = new Forwarder({ outbox: this.outbox, publish: publisher.publish, logger });
    this.forwarder = forwarder;
    client.on('connect', () => {
      logger.info({ url: config.mqtt.url }, 'connected to the broker');
      client.publish(statusTopic, status('online'), { qos: 1, retain: true });
      // Started on the first connection, not before: until then every try would fail and warn.
      forwarder.start();
      forwarder.reconnected();
    });
    client.on('error', (error) => logger.warn({ err: error }, 'MQTT connection problem'));

    this.listenToGateway(client);
    this.startMeters(client);
    this.defineMetrics();
    if (config.health !== false) {
      this.health = await startHealthServer(
        parseHostPort(config.health.listen, 'health.listen', { listener: true }),
        this.metrics,
        () => this.report(),
      );
      logger.info({ url: this.health.url }, 'health and metrics served');
    }
    this.every(config.poll_s * 1000, () => this.pollOnce());
    void this.pollOnce();
    this.every(config.step_s * 1000, () => this.stepOnce());
    this.unlock(client).catch((error: unknown) =>
      // A bug, not a condition: the agent keeps metering without negotiating rather than die.
      logger.error({ err: error }, 'negotiation could not start'),
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.polling;
    await this.negotiator?.close();
    for (const { source } of this.p1) await source.stop();
    for (const bus of this.buses.values()) await bus.close();
    await this.forwarder?.stop();
    await this.client?.endAsync();
    await this.outbox?.close();
    await this.health?.close();
  }

  /** What /health says: healthy when the broker is connected and no meter is stale. */
  report() {
    const stale = this.staleMeters();
    const outbox = this.outbox?.stats();
    const connected = this.client?.connected ?? false;
    return {
      healthy: connected && stale.length === 0,
      prosumer: this.deps.config.prosumer,
      address: this.wallet?.address ?? null,
      uptime_s: Math.round((this.now() - this.startedAt) / 1000),
      mqtt: { connected },
      stale_meters: stale,
      step: this.step,
      outbox: outbox && { depth: outbox.depth, bytes: outbox.bytes, dropped: outbox.dropped },
      balances: Object.fromEntries(
        this.utilities.map((u) => [u.id, { net: (u.balance?.net ?? 0) / 1000 }]),
      ),
    };
  }

  private every(ms: number, run: () => unknown): void {
    this.timers.push(setInterval(run, ms));
  }

  private async unlock(client: MqttClient): Promise<void> {
    const { config, logger } = this.deps;
    try {
      this.wallet = await this.deps.identity();
    } catch (error) {
      logger.error({ code: isEipError(error) ? error.code : undefined }, (error as Error).message);
      return;
    }
    logger.info({ address: this.wallet.address }, 'identity unlocked; negotiation enabled');
    const markets = Object.fromEntries(
      Object.entries(config.market.contracts).map(([utility, address]) => [
        utility,
        marketDomain(config.market.chain_id, address),
      ]),
    );
    this.markets = markets;
    const negotiator = new Negotiator({
      prosumer: config.prosumer,
      signer: this.wallet,
      client,
      markets,
      logger,
      discoveryMs: config.negotiation.discovery_ms,
      roundTimeoutMs: config.negotiation.round_timeout_ms,
      maxRounds: config.negotiation.max_rounds,
      agreementTtlS: config.negotiation.agreement_ttl_s,
      responder: (request) => {
        const state = this.utilities.find((u) => u.id === request.utility);
        return (
          state?.policy.respond(this.observe(state), {
            role: request.role,
            quantity: milli(request.quantity_milli),
          }) ?? null
        );
      },
      onAgreement: (signed) => this.send('agreement', { prosumer: config.prosumer }, signed),
      onOutcome: (outcome) => {
        const kind = outcome.result.kind;
        if (outcome.result.kind === 'agreed') {
          this.reporter?.track(outcome.result.signed, outcome.role);
          this.agreedAt(outcome.utility, outcome.result.signed.agreement.unitPrice);
        }
        this.negotiationOutcomes.set(kind, (this.negotiationOutcomes.get(kind) ?? 0) + 1);
        const report = outcomeMessage(config.prosumer, outcome);
        if (report !== null) {
          // Through the outbox, like the agreement: the park's agreement rate counts every one.
          this.send('negotiationOutcome', { prosumer: config.prosumer }, report).catch((error) =>
            logger.warn({ err: error, negotiation: outcome.negotiationId }, 'outcome not stored'),
          );
        }
        const state = this.utilities.find((u) => u.id === outcome.utility);
        if (!state) return;
        state.failuresInRow =
          kind === 'agreed' || kind === 'proposed' ? 0 : state.failuresInRow + 1;
      },
    });
    await negotiator.start();
    this.negotiator = negotiator;
    await this.startDeliveryReports(markets);
  }

  /** Delivery reports, when a utility names its delivery counters and a metering key is set. */
  private async startDeliveryReports(
    markets: Partial<Record<UtilityId, MarketDomain>>,
  ): Promise<void> {
    const { config, logger } = this.deps;
    if (this.deliveryRefs.size === 0) return;
    let signer: DigestSigner;
    try {
      if (!this.deps.meterIdentity) throw new Error('no metering key is configured');
      signer = await this.deps.meterIdentity();
    } catch (error) {
      logger.error(
        { code: isEipError(error) ? error.code : undefined },
        `no delivery reports: ${(error as Error).message}`,
      );
      return;
    }
    const meterOf = new Map(
      [...this.deliveryRefs].map(([ref, { utility, way }]) => [
        `${utility}.${way}`,
        ref.slice(0, ref.indexOf('.')),
      ]),
    );
    this.reporter = new DeliveryReporter({
      signer,
      markets,
      meterFor: (utility, way) => meterOf.get(`${utility}.${way}`),
      send: (meter, report) =>
        this.send('deliveryReport', { prosumer: config.prosumer, meter }, report),
      file: resolve(this.deps.baseDir, config.data_dir, 'deliveries.json'),
      logger,
    });
    logger.info({ meter_key: signer.address }, 'delivery reports enabled');
  }

  /**
   * What the gateway sends this plant: its agreements' statuses and settled deliveries (logged,
   * and followed by the delivery reports), and why it refused something the agent sent, which
   * is logged as a warning and counted by code, so an installer sees it in the agent's own log.
   */
  private listenToGateway(client: MqttClient): void {
    const { config, logger } = this.deps;
    const prosumer = config.prosumer;
    const filters = [
      subscription('agreementStatus', { prosumer }),
      subscription('deliveryConfirmation', { prosumer }),
      subscription('refusal', { prosumer }),
    ];
    client.on('message', (topicName, payload) => {
      if (!filters.includes(topicName)) return;
      try {
        const message = decodeMessage(topicName, payload);
        if (message.name === 'agreementStatus') {
          const status = message.payload;
          // A trade with the provider: its terms come with the confirmation.
          const terms = status.state === 'confirmed' ? status.agreement : undefined;
          const me = this.wallet?.address.toLowerCase();
          if (terms && me) {
            const role = terms.seller.toLowerCase() === me ? 'seller' : 'buyer';
            this.reporter?.trackTerms(status.utility, terms, role, true);
          }
          this.reporter?.status(status);
          // The terms of a trade with the provider, on this plant's own topic: its latest price.
          if (terms) this.agreedAt(status.utility, terms.unitPrice);
          if (message.payload.state === 'failed') {
            logger.warn(
              { agreement: message.payload.agreement_id, reason: message.payload.reason },
              'agreement failed on chain',
            );
          }
        } else if (message.name === 'deliveryConfirmation') {
          this.counters.deliveries++;
          logger.info(
            {
              agreement: message.payload.agreement_id,
              delivered: message.payload.delivered_milli / 1000,
              contracted: message.payload.contracted_milli / 1000,
              paid: message.payload.paid.toString(),
              refunded: message.payload.refunded.toString(),
            },
            'delivery settled',
          );
        } else if (message.name === 'refusal') {
          const { code, topic: refused } = message.payload;
          this.gatewayRefusals.set(code, (this.gatewayRefusals.get(code) ?? 0) + 1);
          logger.warn({ code, topic: refused }, `the gateway refused: ${message.payload.message}`);
        }
      } catch (error) {
        logger.warn({ topic: topicName }, `refused: ${(error as Error).message}`);
      }
    });
    client.subscribe(filters, { qos: 1 });
  }

  /** Writes a message to the outbox (durable before it counts as sent) and wakes the sender. */
  private async send<N extends TopicName>(
    name: N,
    params: Parameters<typeof topic<N>>[1],
    payload: Payload<N> | ((seq: number) => Payload<N>),
  ): Promise<void> {
    const outbox = this.outbox;
    if (!outbox) return;
    await outbox.append(topic(name, params), (seq) =>
      encodePayload(name, typeof payload === 'function' ? payload(seq) : payload),
    );
    this.forwarder?.wake();
  }

  private startMeters(client: MqttClient): void {
    const { config, logger } = this.deps;
    const byBus = new Map<string, [string, Extract<MeterConfig, { type: 'modbus' }>][]>();
    const mqttMeters = [];
    for (const [id, meter] of Object.entries(config.meters)) {
      if (meter.type === 'modbus')
        byBus.set(meter.bus, [...(byBus.get(meter.bus) ?? []), [id, meter]]);
      else if (meter.type === 'mqtt') mqttMeters.push({ id, ...meter });
      else {
        const source = new P1Source({
          path: meter.device,
          ...p1Line(meter.baud),
          onTelegram: (reading) => {
            for (const [quantity, v] of Object.entries(reading.values)) {
              const measuredAt =
                quantity === 'gas'
                  ? (reading.gasMeasuredAt ?? reading.measuredAt)
                  : reading.measuredAt;
              this.record(id, quantity, { value: v.value, unit: v.unit, stale: false, measuredAt });
            }
          },
          onError: (error) => logger.warn({ meter: id, code: error.code }, error.message),
        });
        this.p1.push({ id, source });
        void source.start().catch((error: Error) => logger.error({ meter: id }, error.message));
      }
    }
    for (const [busId, meters] of byBus) {
      const busConfig = config.buses[busId];
      if (!busConfig) continue;
      const link =
        busConfig.type === 'tcp'
          ? { kind: 'tcp' as const, ...parseHostPort(busConfig.address, `buses.${busId}.address`) }
          : {
              kind: 'rtu' as const,
              path: busConfig.device,
              baudRate: busConfig.baud,
              framing: busConfig.framing,
            };
      const bus = new Bus(link, busConfig.timeout_ms);
      this.buses.set(busId, bus);
      this.pollers.push({
        poller: new Poller({
          meters: meters.map(([id, meter]) => {
            const profile = loadProfile(meter.profile);
            if (!this.meterUtility.has(id)) this.meterUtility.set(id, profile.utility);
            return { id, profile, reader: bus.reader(meter.unit) };
          }),
          retries: busConfig.retries,
          now: this.now,
        }),
        meters: new Map(meters.map(([id, meter]) => [id, meter.profile])),
      });
    }
    if (mqttMeters.length > 0) {
      this.mqttMeters = new MqttMeterSource(
        client,
        mqttMeters,
        (error) => logger.warn({ code: error.code }, error.message),
        this.now,
      );
    }
  }

  private utilityState(id: UtilityId, plan: UtilityPlan): UtilityState {
    const tracker = new BalanceTracker(plan, (ref) => this.counter(id, ref));
    return {
      id,
      tracker,
      policy: this.policyOf(id, plan.policy),
      deadlineSteps:
        plan.deadline_s === undefined
          ? null
          : Math.floor(plan.deadline_s / this.deps.config.step_s),
      balance: undefined,
      imbalance: null,
      failuresInRow: 0,
      recentPrice: null,
      requestsSeen: noRequestsSeen(),
    };
  }

  private policyOf(id: UtilityId, setting: UtilityPlan['policy']): Policy {
    const given = this.deps.policies?.[id];
    if (given) return given;
    if (setting.type === 'rules') return new RulePolicy(setting);
    // The file is read and checked where the config is loaded, once, with the config's problems.
    throw new EipError(
      'INVALID_ARGUMENT',
      `utilities.${id}.policy: the learned policy of ${setting.file} was not passed in: give the agent the policies loadConfig built`,
    );
  }

  /** This plant agreed on `utility` at `unitPrice` (as the chain counts it). */
  private agreedAt(utility: UtilityId, unitPrice: bigint): void {
    const state = this.utilities.find((u) => u.id === utility);
    if (state) state.recentPrice = priceFromBaseUnits(unitPrice);
  }

  private counter(utility: UtilityId, ref: string): CounterValue | undefined {
    const [meter = '', quantity = ''] = ref.split('.');
    const latest = this.value(meter, quantity);
    if (!latest) return undefined;
    const factor = unitFactor(utility, latest.unit);
    return factor === null ? undefined : { value: latest.value * factor, stale: latest.stale };
  }

  private value(meter: string, quantity: string): Latest | undefined {
    const meterConfig = this.deps.config.meters[meter];
    if (meterConfig?.type === 'mqtt') {
      const value = this.mqttMeters?.latest(meter);
      return (
        value && {
          value: value.value,
          unit: value.unit,
          stale: false,
          measuredAt: value.receivedAt,
        }
      );
    }
    if (meterConfig?.type === 'p1') {
      const source = this.p1.find((p) => p.id === meter)?.source;
      const latest = this.latest.get(`${meter}.${quantity}`);
      return latest && { ...latest, stale: source?.latest()?.stale ?? true };
    }
    return this.latest.get(`${meter}.${quantity}`);
  }

  private async pollOnce(): Promise<void> {
    if (this.stopping) return;
    const cycle = Promise.all(
      this.pollers.map(async ({ poller, meters }) => {
        const read = new Set(await poller.cycle());
        for (const id of meters.keys()) {
          const state = poller.state(id);
          if (!state) continue;
          for (const r of state.readings) {
            const latest = {
              value: r.value,
              unit: r.quantity.unit,
              stale: !read.has(id),
              measuredAt: state.readAt ?? this.now(),
            };
            if (read.has(id)) this.record(id, r.quantity.name, latest);
            else this.latest.set(`${id}.${r.quantity.name}`, latest);
          }
        }
      }),
    );
    this.polling = cycle.then(() => undefined);
    await this.polling;
  }

  /** A fresh reading: remembered for the balance and sent to the gateway with its own seq. */
  private record(meter: string, quantity: string, latest: Latest): void {
    this.latest.set(`${meter}.${quantity}`, latest);
    const delivery = this.deliveryRefs.get(`${meter}.${quantity}`);
    const factor = delivery && unitFactor(delivery.utility, latest.unit);
    if (delivery && factor) {
      this.reporter?.measure(
        delivery.utility,
        delivery.way,
        Math.round(latest.value * factor * 1000),
        latest.measuredAt,
      );
    }
    const utility = this.utilityOf(meter, quantity);
    if (!utility || !ID_PATTERN.test(quantity)) return;
    this.counters.readings++;
    const prosumer = this.deps.config.prosumer;
    void this.send('meterReading', { prosumer, meter }, (seq) => ({
      prosumer,
      meter,
      utility,
      quantity,
      value: latest.value,
      unit: latest.unit,
      measured_at_ms: latest.measuredAt,
      seq,
      stale: false,
    }))
      .then(() => {
        this.firstReadingAt ??= this.now();
      })
      .catch((error: Error) =>
        this.deps.logger.error({ meter, quantity }, `reading not stored: ${error.message}`),
      );
  }

  /** The utility a reading belongs to: the plan that uses the meter, else the meter's own. */
  private utilityOf(meter: string, quantity: string): UtilityId | undefined {
    const known = this.meterUtility.get(meter);
    if (known) return known;
    const config = this.deps.config.meters[meter];
    if (config?.type === 'p1') return quantity === 'gas' ? 'biogas' : 'electricity';
    return undefined;
  }

  private observe(state: UtilityState): Observation {
    const b = state.balance;
    return {
      utility: getUtility(state.id),
      step: this.step,
      net: b?.net ?? milli(0),
      busy: this.negotiator?.busy(state.id) ?? true,
      failuresInRow: state.failuresInRow,
      storageLevel: b?.storageLevel ?? milli(0),
      storageCapacity: b?.storageCapacity ?? milli(0),
      flow: milli((b?.production ?? 0) - (b?.consumption ?? 0)),
      stepsToDeadline: this.stepsToDeadline(state),
      recentPrice: state.recentPrice,
      requestsSeen: state.requestsSeen,
    };
  }

  /**
   * Steps left to settle the current surplus or deficit by the plant's deadline, never below 0;
   * while balanced, the whole deadline, as a new imbalance would have. Counted in the agent's
   * steps, not by the clock, so a timer's jitter never takes a step off.
   */
  private stepsToDeadline(state: UtilityState): number | null {
    if (state.deadlineSteps === null) return null;
    const elapsed = state.imbalance === null ? 0 : this.step - state.imbalance.since;
    return Math.max(0, state.deadlineSteps - elapsed);
  }

  /**
   * Notes when the current surplus or deficit began: at least one quantity tick either way, the
   * smallest the market knows. Whether it is worth trading is the policy's judgement (min_trade),
   * but the plant's deadline runs from when it first had anything to settle; a change of side
   * starts a new one.
   */
  private trackImbalance(state: UtilityState, net: Milli): void {
    const surplus = net > 0;
    if (Math.abs(net) < getUtility(state.id).quantity_tick) state.imbalance = null;
    else if (state.imbalance?.surplus !== surplus) state.imbalance = { since: this.step, surplus };
  }

  private stepOnce(): void {
    if (this.stopping) return;
    this.step++;
    this.counters.steps++;
    const { config, logger } = this.deps;
    for (const state of this.utilities) {
      // Taken every step, with or without a balance: the counts are of the last step alone.
      state.requestsSeen = this.negotiator?.takeRequestsSeen(state.id) ?? noRequestsSeen();
      const outcome = state.tracker.step();
      if (outcome.kind === 'unknown') {
        this.counters.balanceUnknown++;
        logger.warn(
          { utility: state.id, missing: outcome.missing },
          'no balance this step: readings missing or stale',
        );
        continue;
      }
      const b = outcome.balance;
      state.balance = b;
      this.trackImbalance(state, b.net);
      if (b.resets.length)
        logger.warn({ utility: state.id, counters: b.resets }, 'counter went backwards');
      if (this.client?.connected) {
        this.client.publish(
          topic('balance', { prosumer: config.prosumer, utility: state.id }),
          encodePayload('balance', {
            prosumer: config.prosumer,
            utility: state.id,
            step: this.step,
            at_ms: this.now(),
            production_milli: b.production,
            consumption_milli: b.consumption,
            storage_level_milli: b.storageLevel,
            storage_capacity_milli: b.storageCapacity,
            net_milli: b.net,
          }),
          { qos: 0 },
        );
      }
      this.act(state);
    }
  }

  private act(state: UtilityState): void {
    const { config, logger } = this.deps;
    if (!this.negotiator) return; // no identity yet: nothing can be signed
    const action = state.policy.decide(this.observe(state));
    const plan = config.utilities[state.id];
    const start = this.now();
    const end = start + (plan?.delivery_s ?? 3600) * 1000;
    logger.info(
      {
        utility: state.id,
        step: this.step,
        action: action.kind,
        net: (state.balance?.net ?? 0) / 1000,
      },
      'decision',
    );
    if (action.kind === 'negotiate') {
      void this.negotiator.request({
        utility: state.id,
        role: action.role,
        quantity: action.quantity,
        spec: action.spec,
        deliveryStartMs: start,
        deliveryEndMs: end,
      });
    } else if (action.kind === 'provider') {
      const utility = getUtility(state.id);
      const domain = this.markets[state.id];
      if (!this.wallet || !domain) return;
      this.counters.providerTrades++;
      state.failuresInRow = 0;
      const startS = BigInt(Math.floor(start / 1000));
      // Signed, for the gateway to place with tradeWithProviderFor: the plant pays no gas.
      const order = {
        prosumer: this.wallet.address,
        role: action.role === 'buyer' ? (1 as const) : (0 as const),
        quantity: BigInt(action.quantity),
        deliveryStart: startS,
        deliveryEnd: BigInt(Math.floor(end / 1000)),
        limitPrice: unitPriceBaseUnits(
          action.role === 'buyer' ? utility.provider_sells_at : utility.provider_buys_at,
        ),
        nonce: randomNonce(),
        deadline: startS + BigInt(config.negotiation.agreement_ttl_s),
      };
      void this.send(
        'providerTrade',
        { utility: state.id, prosumer: config.prosumer },
        {
          prosumer: config.prosumer,
          utility: state.id,
          order,
          signature: signDigest(this.wallet, typedDataDigest(domain, 'ProviderOrder', order)),
          at_ms: start,
        },
      );
    }
  }

  private staleMeters(): string[] {
    const stale = this.pollers.flatMap(({ poller }) => poller.staleMeters());
    for (const { id, source } of this.p1) if (source.latest()?.stale ?? true) stale.push(id);
    return stale;
  }

  private defineMetrics(): void {
    const m = this.metrics;
    const sum = (pick: (p: Poller) => number) =>
      this.pollers.reduce((s, { poller }) => s + pick(poller), 0);
    m.counter('eip_edge_polls_total', 'Modbus read attempts', () => sum((p) => p.counters.polls));
    m.counter('eip_edge_poll_errors_total', 'Modbus reads that failed', () =>
      sum((p) => p.counters.errors),
    );
    m.gauge(
      'eip_edge_stale_meters',
      'Meters whose last read failed or went silent',
      () => this.staleMeters().length,
    );
    m.counter(
      'eip_edge_readings_total',
      'Readings stored for the gateway',
      () => this.counters.readings,
    );
    m.gauge(
      'eip_edge_outbox_depth',
      'Messages on disk not yet acknowledged by the broker',
      () => this.outbox?.stats().depth ?? 0,
    );
    m.gauge(
      'eip_edge_outbox_bytes',
      'Bytes of messages on disk',
      () => this.outbox?.stats().bytes ?? 0,
    );
    m.counter(
      'eip_edge_outbox_dropped_total',
      'Oldest messages dropped because the outbox was full',
      () => this.outbox?.stats().dropped ?? 0,
    );
    m.counter(
      'eip_edge_sent_total',
      'Messages the broker acknowledged',
      () => this.forwarder?.counters.sent ?? 0,
    );
    m.counter(
      'eip_edge_negotiations_total',
      'Negotiations ended, by outcome',
      () => [...this.negotiationOutcomes].map(([outcome, n]) => [{ outcome }, n] as const),
      ['outcome'],
    );
    m.counter(
      'eip_edge_invalid_messages_total',
      'MQTT messages refused (malformed, unsolicited, bad signature)',
      () => this.negotiator?.counters.invalidMessages ?? 0,
    );
    m.counter(
      'eip_edge_provider_trades_total',
      'Orders to trade with the main provider',
      () => this.counters.providerTrades,
    );
    m.counter(
      'eip_edge_gateway_refusals_total',
      'Messages the gateway refused, by error code (each is logged with why)',
      () => [...this.gatewayRefusals].map(([code, n]) => [{ code }, n] as const),
      ['code'],
    );
    m.counter(
      'eip_edge_deliveries_settled_total',
      'Agreements of this plant settled on chain',
      () => this.counters.deliveries,
    );
    m.counter('eip_edge_p1_crc_errors_total', 'P1 telegrams that failed their CRC', () =>
      this.p1.reduce((s, p) => s + p.source.counters.crc_errors, 0),
    );
    m.gauge('eip_edge_mqtt_connected', '1 when connected to the broker', () =>
      this.client?.connected ? 1 : 0,
    );
  }
}
