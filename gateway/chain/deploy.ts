/**
 * Deploys the UtilityToken and one UtilityMarket per utility, with the providers' tariffs taken
 * from core's utility table, and returns the deployment manifest.
 */
import { type BaseContract, getAddress, type Signer, ZeroAddress } from 'ethers';
import UtilityMarketArtifact from '../../contracts/artifacts/UtilityMarket.json' with {
  type: 'json',
};
import { UtilityMarket__factory, UtilityToken__factory } from '../../contracts/types/index.js';
import { EipError } from '../../core/errors.js';
import { unitPriceBaseUnits } from '../../core/units.js';
import { UTILITIES, UTILITY_IDS, type UtilityId } from '../../core/utilities.js';
import type { Manifest } from './manifest.js';

/** One hour for the last reports of a provision window to reach the chain. */
export const DEFAULT_GRACE_PERIOD = 3600;
/** A year: longer would hold an unreported agreement's escrow for no purpose. */
export const MAX_GRACE_PERIOD = 365 * 24 * 3600;

export interface DeployOptions {
  readonly signer: Signer;
  /** Receives the operator and admin roles and the minter role; defaults to the deployer. */
  readonly operator?: string;
  /** The main provider's wallet for every market; defaults to the operator. */
  readonly provider?: string;
  readonly gracePeriod?: number;
  /** Told each step as it completes, for progress output. */
  readonly onStep?: (step: string) => void;
}

/** Decodes the market's custom errors (the token's constructor cannot revert). */
const MARKET_INTERFACE = UtilityMarket__factory.createInterface();

/** One deployment, mined, or an error naming the contract and, when it reverted, why. */
async function deployed<T extends BaseContract>(
  what: string,
  deploy: () => Promise<T>,
): Promise<T> {
  try {
    const contract = await deploy();
    await contract.waitForDeployment();
    return contract;
  } catch (error) {
    const data = (error as { data?: unknown }).data;
    const decoded = typeof data === 'string' ? MARKET_INTERFACE.parseError(data) : null;
    const reason = decoded
      ? `${decoded.name}(${decoded.args.join(', ')})`
      : ((error as { shortMessage?: string }).shortMessage ?? (error as Error).message);
    throw new EipError('IO_ERROR', `deploying ${what} failed: ${reason}`, {
      cause: error,
      retryable: !decoded,
    });
  }
}

function nonZeroAddress(what: string, value: string): string {
  const address = getAddress(value);
  if (address === ZeroAddress) {
    throw new EipError('INVALID_ARGUMENT', `${what} must not be the zero address`, {
      details: { what },
    });
  }
  return address;
}

export async function deployMarkets(options: DeployOptions): Promise<Manifest> {
  const { signer } = options;
  const step = options.onStep ?? (() => undefined);
  const deployer = getAddress(await signer.getAddress());
  const operator = nonZeroAddress('the operator', options.operator ?? deployer);
  const provider = nonZeroAddress('the provider', options.provider ?? operator);
  const gracePeriod = options.gracePeriod ?? DEFAULT_GRACE_PERIOD;
  if (!Number.isSafeInteger(gracePeriod) || gracePeriod < 0 || gracePeriod > MAX_GRACE_PERIOD) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `the grace period must be whole seconds from 0 to ${MAX_GRACE_PERIOD} (a year), got ${gracePeriod}`,
    );
  }
  const network = await signer.provider?.getNetwork();
  if (!network) throw new EipError('INVALID_ARGUMENT', 'the deploying signer has no provider');

  const token = await deployed('UtilityToken', () =>
    new UtilityToken__factory(signer).deploy(operator),
  );
  const tokenReceipt = await token.deploymentTransaction()?.wait();
  if (!tokenReceipt) throw new EipError('IO_ERROR', 'the UtilityToken deployment has no receipt');
  const tokenAddress = await token.getAddress();
  step(`UtilityToken at ${tokenAddress}`);

  const markets = {} as Record<UtilityId, Manifest['markets'][UtilityId]>;
  for (const id of UTILITY_IDS) {
    const utility = UTILITIES[id];
    const sellsAt = unitPriceBaseUnits(utility.provider_sells_at);
    const buysAt = unitPriceBaseUnits(utility.provider_buys_at);
    const market = await deployed(`the ${id} market`, () =>
      new UtilityMarket__factory(signer).deploy(
        tokenAddress,
        id,
        utility.unit,
        operator,
        provider,
        sellsAt,
        buysAt,
        gracePeriod,
      ),
    );
    const address = getAddress(await market.getAddress());
    markets[id] = {
      address,
      unit: utility.unit,
      providerSellsAt: sellsAt,
      providerBuysAt: buysAt,
      provider,
      gracePeriod,
    };
    step(`${id} market at ${address}`);
  }

  return {
    version: 1,
    chainId: Number(network.chainId),
    block: tokenReceipt.blockNumber,
    deployer,
    operator,
    compiler: UtilityMarketArtifact.compiler.version,
    deployedAt: new Date().toISOString(),
    token: getAddress(tokenAddress),
    markets,
  };
}
