/**
 * The transaction sender against a real anvil, under the faults it is built for: many calls in
 * flight, a transaction stuck in the pool, a call that would revert, the node going down and
 * coming back, the gateway killed after its write-ahead, another sender of the same key, and a
 * node whose receipts lag behind its head.
 *
 * Every call is a `mint` of one base unit from the operator key, so the token's total supply
 * counts how many calls the chain executed: a call sent twice under two nonces shows up there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  getAddress,
  type JsonRpcApiProviderOptions,
  JsonRpcProvider,
  Transaction,
  type TransactionReceipt,
  Wallet,
} from 'ethers';
import { afterEach, describe, expect, it } from 'vitest';
import { UtilityToken__factory } from '../../contracts/types/index.js';
import { isEipError } from '../../core/errors.js';
import { ANVIL_DEV_KEY, type AnvilOptions, startAnvil } from '../../gateway/chain/anvil.js';
import {
  type TxJob,
  type TxOutcome,
  type TxRecord,
  TxSender,
} from '../../gateway/chain/tx-sender.js';
import { JsonStore } from '../../gateway/relay/store.js';
import { recordingLogger } from '../support/recording-logger.js';
import { until } from '../support/until.js';

const TOKEN = UtilityToken__factory.createInterface();
const OPERATOR = new Wallet(ANVIL_DEV_KEY).address;
/** Receives every mint. */
const RECIPIENT = Wallet.createRandom().address;
/** Short enough to see replacements within a test, long enough that a healthy call never gets one. */
const REPLACE_AFTER_MS = 300;
/** Longer than any test: where replacements would only blur what a test shows. */
const NEVER_MS = 600_000;
/** A fresh answer on every poll: the provider's default 250 ms cache would hide new blocks. */
const PROVIDER_OPTIONS: JsonRpcApiProviderOptions = { cacheTimeout: -1 };

/** Undone after each test, last first: senders stop before their node. */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'eip-tx-sender-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Chain {
  readonly url: string;
  readonly provider: JsonRpcProvider;
  readonly token: string;
  stop(): Promise<void>;
}

/** Anvil with the token deployed by the operator key, before any sender reads its nonce. */
async function startChain(
  options: AnvilOptions = {},
  connect = (url: string) => new JsonRpcProvider(url, undefined, PROVIDER_OPTIONS),
): Promise<Chain> {
  const anvil = await startAnvil(options);
  cleanups.push(() => anvil.stop());
  const provider = connect(anvil.url);
  cleanups.push(() => provider.destroy());
  const deployed = await new UtilityToken__factory(new Wallet(ANVIL_DEV_KEY, provider)).deploy(
    OPERATOR,
  );
  await deployed.waitForDeployment();
  return { url: anvil.url, provider, token: await deployed.getAddress(), stop: anvil.stop };
}

interface Reported {
  readonly key: string;
  readonly outcome: TxOutcome;
}

interface Gateway {
  readonly sender: TxSender;
  readonly store: JsonStore<TxRecord>;
  readonly log: ReturnType<typeof recordingLogger>;
  /** Stops the sender and closes its store, outcomes still due or not (as a kill would). */
  stop(): Promise<void>;
}

interface GatewayOptions {
  /** The store's directory: a second gateway on the same one picks up the first's records. */
  readonly dir?: string;
  /** Where outcomes are recorded; shared by gateways that follow one another. */
  readonly reported?: Reported[];
  readonly replaceAfterMs?: number;
  readonly confirmations?: number;
}

/** The sender as the gateway runs it: its records in a JsonStore on disk, started. */
async function startGateway(chain: Chain, options: GatewayOptions = {}): Promise<Gateway> {
  const store = await JsonStore.open<TxRecord>(options.dir ?? tempDir());
  const reported = options.reported ?? [];
  const log = recordingLogger();
  const sender = new TxSender({
    provider: chain.provider,
    wallet: new Wallet(ANVIL_DEV_KEY, chain.provider),
    store,
    errors: [TOKEN],
    logger: log,
    replaceAfterMs: options.replaceAfterMs ?? NEVER_MS,
    confirmations: options.confirmations ?? 1,
    pollMs: 20,
    onOutcome: async (key, outcome) => {
      reported.push({ key, outcome });
    },
  });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= sender.stop().then(() => store.close());
    return stopping;
  };
  cleanups.push(stop);
  await sender.start();
  return { sender, store, log, stop };
}

function mint(chain: Chain, key: string): TxJob {
  return { key, to: chain.token, data: TOKEN.encodeFunctionData('mint', [RECIPIENT, 1n]) };
}

/** Calls the chain executed (each mints one unit). */
function executed(chain: Chain): Promise<bigint> {
  return UtilityToken__factory.connect(chain.token, chain.provider).totalSupply();
}

function minedNonce(chain: Chain): Promise<number> {
  return chain.provider.getTransactionCount(OPERATOR, 'latest');
}

/** Waits for `count` outcomes and checks each key was reported once, all confirmed. */
async function confirmedOnce(gateway: Gateway, reported: Reported[], count: number) {
  await until(`${count} outcomes`, () => reported.length >= count);
  // Nothing left in flight: no record is left to be reported a second time.
  await until('nothing in flight', () => gateway.sender.inFlight === 0);
  expect(reported).toHaveLength(count);
  expect(new Set(reported.map((r) => r.key)).size).toBe(count);
  for (const { outcome } of reported) expect(outcome.kind).toBe('confirmed');
}

function logged(gateway: Gateway, message: string): number {
  return gateway.log.entries.filter((e) => e.message === message).length;
}

interface PoolTx {
  readonly hash: string;
  readonly maxFeePerGas: string;
  readonly maxPriorityFeePerGas: string;
}

/** The operator's transactions waiting in anvil's pool, by nonce. */
async function pooled(chain: Chain): Promise<Record<string, PoolTx>> {
  const content = (await chain.provider.send('txpool_content', [])) as {
    pending: Record<string, Record<string, PoolTx>>;
  };
  const ours = Object.entries(content.pending).find(([from]) => getAddress(from) === OPERATOR);
  return ours?.[1] ?? {};
}

const automine = (chain: Chain, on: boolean) => chain.provider.send('evm_setAutomine', [on]);

describe('TxSender against anvil', () => {
  it('gives 50 calls sent at once consecutive nonces and confirms each once', async () => {
    const chain = await startChain();
    const reported: Reported[] = [];
    const gateway = await startGateway(chain, { reported });
    const first = await minedNonce(chain);

    await Promise.all(
      Array.from({ length: 50 }, (_, i) => gateway.sender.send(mint(chain, `mint:${i}`))),
    );
    await confirmedOnce(gateway, reported, 50);

    const nonces = await Promise.all(
      reported.map(
        async ({ outcome }) => (await chain.provider.getTransaction(outcome.hash))?.nonce ?? -1,
      ),
    );
    const consecutive = Array.from({ length: 50 }, (_, i) => first + i);
    expect(nonces.sort((a, b) => a - b)).toEqual(consecutive);
    expect(await minedNonce(chain)).toBe(first + 50);
    expect(await executed(chain)).toBe(50n);
    expect(gateway.sender.counters).toMatchObject({ sent: 50, confirmed: 50, replaced: 0 });
  });

  it('reports a transaction only once it has the configured number of confirmations', async () => {
    const chain = await startChain();
    const reported: Reported[] = [];
    const gateway = await startGateway(chain, { reported, confirmations: 3 });
    await gateway.sender.send(mint(chain, 'deep'));
    // Mined at once (automine), so one confirmation: two more blocks are needed.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(reported).toHaveLength(0);
    await chain.provider.send('evm_mine', []);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(reported).toHaveLength(0);
    await chain.provider.send('evm_mine', []);
    await confirmedOnce(gateway, reported, 1);
  });

  it('replaces a stuck transaction with higher fees, and reports the version that is mined', async () => {
    const chain = await startChain();
    const reported: Reported[] = [];
    const gateway = await startGateway(chain, { reported, replaceAfterMs: REPLACE_AFTER_MS });
    await automine(chain, false);
    const firstHash = await gateway.sender.send(mint(chain, 'stuck'));
    // The bytes written ahead are the first version, as signed.
    const firstRaw = gateway.store.get('stuck')?.attempts[0]?.raw ?? '';
    const original = Transaction.from(firstRaw);
    expect(original.hash).toBe(firstHash);

    await until('replaced', () => gateway.sender.counters.replaced >= 1);
    const waiting = Object.values(await pooled(chain));
    expect(waiting).toHaveLength(1);
    const replacement = waiting[0] as PoolTx;
    expect(replacement.hash).not.toBe(firstHash);
    // Nodes replace a pooled transaction only for at least 10% more on both fees.
    const atLeastBumped = (fee: string, was: bigint | null) =>
      BigInt(fee) * 1000n >= (was ?? 0n) * 1125n;
    expect(atLeastBumped(replacement.maxFeePerGas, original.maxFeePerGas)).toBe(true);
    expect(atLeastBumped(replacement.maxPriorityFeePerGas, original.maxPriorityFeePerGas)).toBe(
      true,
    );
    expect(await chain.provider.send('eth_getTransactionByHash', [firstHash])).toBeNull();

    await chain.provider.send('evm_mine', []);
    await confirmedOnce(gateway, reported, 1);
    const { outcome } = reported[0] as Reported;
    const block = await chain.provider.getBlock(outcome.blockNumber);
    expect(block?.transactions).toEqual([outcome.hash]);
    expect(outcome.hash).not.toBe(firstHash);
    expect(await chain.provider.getTransactionReceipt(firstHash)).toBeNull();
    expect(await minedNonce(chain)).toBe(original.nonce + 1);
    expect(await executed(chain)).toBe(1n);
  });

  it('refuses a call that would revert with the decoded error, and spends no nonce on it', async () => {
    const chain = await startChain();
    const reported: Reported[] = [];
    const gateway = await startGateway(chain, { reported });
    const next = await minedNonce(chain);

    // The operator holds no tokens: the transfer reverts with OpenZeppelin's custom error.
    const overdraw = {
      key: 'overdraw',
      to: chain.token,
      data: TOKEN.encodeFunctionData('transfer', [RECIPIENT, 1n]),
    };
    const refusal = await gateway.sender.send(overdraw).catch((error: unknown) => error);
    expect(isEipError(refusal, 'CHAIN_REVERTED')).toBe(true);
    expect((refusal as Error).message).toMatch(/^ERC20InsufficientBalance\(/);
    expect(gateway.sender.counters).toMatchObject({ refused: 1, sent: 0 });
    expect(gateway.sender.inFlight).toBe(0);

    const hash = await gateway.sender.send(mint(chain, 'after'));
    expect((await chain.provider.getTransaction(hash))?.nonce).toBe(next);
    await confirmedOnce(gateway, reported, 1);
  });

  it('waits out the node going down and sends again to the node that lost its pool', async () => {
    const stateFile = join(tempDir(), 'chain.json');
    const anvilOptions = { stateFile, stateIntervalS: 1 };
    const chain = await startChain(anvilOptions);
    const reported: Reported[] = [];
    const gateway = await startGateway(chain, { reported, replaceAfterMs: REPLACE_AFTER_MS });
    await automine(chain, false);
    const nonce = await minedNonce(chain);
    await gateway.sender.send(mint(chain, 'across-restart'));

    await chain.stop();
    const unreachable = 'chain node unreachable; transactions wait';
    await until('the sender saw the node down', () => logged(gateway, unreachable) > 0);
    // A call while the node is down is refused before it takes a nonce; the caller retries.
    const refusal = await gateway.sender.send(mint(chain, 'while-down')).catch((e: unknown) => e);
    expect(isEipError(refusal, 'IO_ERROR') && refusal.retryable).toBe(true);

    // Same port, so the sender's provider finds it; a new process, so an empty pool (and
    // automine on again).
    const again = await startAnvil({ ...anvilOptions, port: Number(new URL(chain.url).port) });
    cleanups.push(() => again.stop());
    await confirmedOnce(gateway, reported, 1);
    expect(await minedNonce(chain)).toBe(nonce + 1);
    expect(await executed(chain)).toBe(1n);
    // Sent again under its own nonce (as a replacement, being overdue by then), not a new one.
    expect(gateway.sender.counters.replaced).toBeGreaterThanOrEqual(1);
    expect(gateway.sender.counters.renonced).toBe(0);
    expect(logged(gateway, unreachable)).toBe(1);
    expect(logged(gateway, 'chain node is back')).toBe(1);
  });

  it('resends what a killed gateway wrote ahead, each call once under its own nonce', async () => {
    const chain = await startChain();
    const dir = tempDir();
    const reported: Reported[] = [];
    const before = await startGateway(chain, { dir, reported });
    await automine(chain, false);
    const nonce = await minedNonce(chain);
    const hashes: string[] = [];
    for (let i = 0; i < 5; i++) hashes.push(await before.sender.send(mint(chain, `crash:${i}`)));
    // The last two were on disk but the process died before the node got them.
    for (const hash of hashes.slice(-2)) {
      await chain.provider.send('anvil_dropTransaction', [hash]);
    }
    expect(Object.keys(await pooled(chain))).toHaveLength(3);
    // kill -9: nothing in flight is waited for.
    await before.stop();
    expect(reported).toHaveLength(0);

    const after = await startGateway(chain, { dir, reported });
    await chain.provider.send('evm_mine', []);
    await confirmedOnce(after, reported, 5);
    // The same signed bytes, not new transactions: one per nonce, nothing executed twice.
    expect(reported.map((r) => r.outcome.hash).sort()).toEqual([...hashes].sort());
    expect(await minedNonce(chain)).toBe(nonce + 5);
    expect(await executed(chain)).toBe(5n);
    // Re-sending those the node already had is what was wanted, not a failure to warn about.
    expect(after.log.entries.filter((e) => e.level === 'warn')).toEqual([]);
  });

  it('sends a call again under a new nonce when another sender of the key took its nonce', async () => {
    const chain = await startChain();
    const reported: Reported[] = [];
    const gateway = await startGateway(chain, { reported, replaceAfterMs: REPLACE_AFTER_MS });
    const nonce = await minedNonce(chain);
    // Another process with the same key, after the sender read its nonce at start.
    const outsider = new Wallet(ANVIL_DEV_KEY, chain.provider);
    await (await outsider.sendTransaction({ to: RECIPIENT })).wait();

    const firstHash = await gateway.sender.send(mint(chain, 'renonced'));
    await confirmedOnce(gateway, reported, 1);
    expect(gateway.sender.counters.renonced).toBe(1);
    expect(
      logged(gateway, 'nonce used by another sender of this key; sent again under a new one'),
    ).toBe(1);
    expect((reported[0] as Reported).outcome.hash).not.toBe(firstHash);
    expect(await chain.provider.getTransactionReceipt(firstHash)).toBeNull();
    expect(await minedNonce(chain)).toBe(nonce + 2);
    expect(await executed(chain)).toBe(1n);
  });

  it('looks a lagging receipt up again rather than sending a mined call under a new nonce', async () => {
    const chain = await startChain({}, (url) => new LaggingReceipts(url));
    const node = chain.provider as LaggingReceipts;
    const reported: Reported[] = [];
    const gateway = await startGateway(chain, { reported, replaceAfterMs: REPLACE_AFTER_MS });
    // Missed twice: at the first poll that sees its block, and when its replacement falls due
    // (after the deployment, whose own wait would use them up).
    node.misses = 2;
    const hash = await gateway.sender.send(mint(chain, 'lagging'));

    await confirmedOnce(gateway, reported, 1);
    expect(await executed(chain)).toBe(1n);
    expect(gateway.sender.counters).toMatchObject({ renonced: 0, replaced: 0 });
    expect((reported[0] as Reported).outcome.hash).toBe(hash);
    expect(node.misses).toBe(0);
  });
});

/**
 * A node that answers a mined transaction's receipt as missing, `misses` times, as one behind a
 * load balancer does when its peers are a block apart.
 */
class LaggingReceipts extends JsonRpcProvider {
  misses = 0;

  constructor(url: string) {
    super(url, undefined, PROVIDER_OPTIONS);
  }

  override async getTransactionReceipt(hash: string): Promise<TransactionReceipt | null> {
    const receipt = await super.getTransactionReceipt(hash);
    if (receipt !== null && this.misses > 0) {
      this.misses--;
      return null;
    }
    return receipt;
  }
}
