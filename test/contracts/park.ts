/**
 * A park on a real anvil chain for integration tests and the gas benchmark: the token and the
 * three markets deployed by the gateway's deploy code, a seller and a buyer registered on the
 * biogas market with one meter each, funded and approved. Keys are anvil's public development keys.
 */
import {
  HDNodeWallet,
  JsonRpcProvider,
  Mnemonic,
  NonceManager,
  type Signer,
  type TypedDataField,
  Wallet,
} from 'ethers';
import {
  type UtilityMarket,
  UtilityMarket__factory,
  type UtilityToken,
  UtilityToken__factory,
} from '../../contracts/types/index.js';
import {
  type Agreement,
  type DeliveryReport,
  type MarketDomain,
  marketDomain,
  SIGNED,
  type SignedKind,
  type SignedValue,
  structHash,
} from '../../core/messages/eip712.js';
import { type Anvil, startAnvil } from '../../gateway/chain/anvil.js';
import { deployMarkets } from '../../gateway/chain/deploy.js';
import type { Manifest } from '../../gateway/chain/manifest.js';

const MNEMONIC = Mnemonic.fromPhrase('test test test test test test test test test test test junk');
export const FUNDS = 1_000_000n * 10n ** 18n;
/** 35 tokens per m3 in base units per milli-m3 (core's unitPriceBaseUnits of 35). */
export const PRICE = 35n * 10n ** 15n;
/** 100 m3 in milli-m3. */
export const QUANTITY = 100_000n;
export const WINDOW = 4n * 3600n;

function devWallet(index: number, provider: JsonRpcProvider): Wallet {
  const node = HDNodeWallet.fromMnemonic(MNEMONIC, `m/44'/60'/0'/0/${index}`);
  return new Wallet(node.privateKey, provider);
}

export interface Park {
  readonly anvil: Anvil;
  readonly provider: JsonRpcProvider;
  readonly manifest: Manifest;
  readonly domain: MarketDomain;
  readonly token: UtilityToken;
  /** The biogas market, connected as the operator, who also relays. */
  readonly market: UtilityMarket;
  readonly operator: Wallet;
  readonly seller: Wallet;
  readonly buyer: Wallet;
  readonly utilityProvider: Wallet;
  readonly sellerMeter: Wallet;
  readonly buyerMeter: Wallet;
  close(): Promise<void>;
}

export async function startPark(): Promise<Park> {
  const anvil = await startAnvil();
  try {
    // No response cache: a test reads state right after changing it.
    const provider = new JsonRpcProvider(anvil.url, undefined, {
      cacheTimeout: -1,
      pollingInterval: 50,
    });
    const [operator, seller, buyer, utilityProvider] = [0, 1, 2, 3].map((i) =>
      devWallet(i, provider),
    ) as [Wallet, Wallet, Wallet, Wallet];
    const sellerMeter = new Wallet(Wallet.createRandom().privateKey, provider);
    const buyerMeter = new Wallet(Wallet.createRandom().privateKey, provider);
    const manifest = await deployMarkets({
      signer: new NonceManager(operator),
      provider: utilityProvider.address,
    });
    const token = UtilityToken__factory.connect(manifest.token, operator);
    const market = UtilityMarket__factory.connect(manifest.markets.biogas.address, operator);
    await send(market.registerProsumer(seller.address));
    await send(market.registerProsumer(buyer.address));
    await send(market.registerMeter(seller.address, sellerMeter.address));
    await send(market.registerMeter(buyer.address, buyerMeter.address));
    for (const holder of [seller, buyer, utilityProvider]) {
      await send(token.mint(holder.address, FUNDS));
      await send(token.connect(holder).approve(manifest.markets.biogas.address, 2n ** 256n - 1n));
    }
    const domain = marketDomain(manifest.chainId, manifest.markets.biogas.address);
    return {
      anvil,
      provider,
      manifest,
      domain,
      token,
      market,
      operator,
      seller,
      buyer,
      utilityProvider,
      sellerMeter,
      buyerMeter,
      close: async () => {
        provider.destroy();
        await anvil.stop();
      },
    };
  } catch (error) {
    await anvil.stop();
    throw error;
  }
}

/** Sends a transaction and waits for it to be mined; returns the receipt. */
export async function send(pending: Promise<{ wait(): Promise<unknown> }>) {
  const tx = await pending;
  return tx.wait() as Promise<{ gasUsed: bigint; status: number } | null>;
}

export async function sign<K extends SignedKind>(
  signer: Signer,
  domain: MarketDomain,
  kind: K,
  value: SignedValue[K],
): Promise<string> {
  return signer.signTypedData(
    domain,
    SIGNED[kind] as unknown as Record<string, TypedDataField[]>,
    value as unknown as Record<string, unknown>,
  );
}

export async function now(provider: JsonRpcProvider): Promise<bigint> {
  const block = await provider.getBlock('latest');
  return BigInt(block?.timestamp ?? 0);
}

/** Moves the chain's clock forward and mines a block. */
export async function warp(provider: JsonRpcProvider, seconds: bigint): Promise<void> {
  await provider.send('evm_increaseTime', [Number(seconds)]);
  await provider.send('evm_mine', []);
}

let nonce = 0n;

/** Terms between the park's seller and buyer with fresh nonces, the window starting now. */
export async function agreementTerms(
  park: Park,
  overrides: Partial<Agreement> = {},
): Promise<Agreement> {
  const start = await now(park.provider);
  nonce += 1n;
  return {
    negotiationId: `0x${nonce.toString(16).padStart(64, '0')}`,
    seller: park.seller.address,
    buyer: park.buyer.address,
    quantity: QUANTITY,
    unitPrice: PRICE,
    deliveryStart: start,
    deliveryEnd: start + WINDOW,
    transcriptHash: `0x${'ab'.repeat(32)}`,
    sellerNonce: nonce,
    sellerDeadline: start + 600n,
    buyerNonce: nonce,
    buyerDeadline: start + 600n,
    ...overrides,
  };
}

/** Opens `terms` signed by both parties; returns the receipt. */
export async function openAgreement(park: Park, terms: Agreement) {
  const sellerSignature = await sign(park.seller, park.domain, 'Agreement', terms);
  const buyerSignature = await sign(park.buyer, park.domain, 'Agreement', terms);
  return send(park.market.openAgreement(terms, sellerSignature, buyerSignature));
}

/** A meter's report of `delivered` measured at the chain's current time, signed and posted. */
export async function reportDelivery(
  park: Park,
  terms: Agreement,
  meter: Signer,
  delivered: bigint,
  seq: bigint,
) {
  const report: DeliveryReport = {
    agreementId: structHash('Agreement', terms),
    delivered,
    measuredAt: await now(park.provider),
    seq,
  };
  return send(
    park.market.reportDelivery(
      terms,
      report,
      await sign(meter, park.domain, 'DeliveryReport', report),
    ),
  );
}
