/** The anvil starter: a free port, state kept on disk across restarts, and clear failures. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonRpcProvider } from 'ethers';
import { describe, expect, it } from 'vitest';
import { isEipError } from '../../core/errors.js';
import { ANVIL_CHAIN_ID, startAnvil } from '../../gateway/chain/anvil.js';

async function blockNumber(url: string): Promise<number> {
  const provider = new JsonRpcProvider(url);
  try {
    return await provider.getBlockNumber();
  } finally {
    provider.destroy();
  }
}

describe('startAnvil', () => {
  it('serves the chain on a free loopback port and stops', async () => {
    const anvil = await startAnvil();
    expect(anvil.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(anvil.chainId).toBe(ANVIL_CHAIN_ID);
    expect(await blockNumber(anvil.url)).toBe(0);
    await anvil.stop();
    await expect(blockNumber(anvil.url)).rejects.toThrow();
  });

  it('keeps the chain in its state file across a restart', async () => {
    const stateFile = join(mkdtempSync(join(tmpdir(), 'eip-anvil-')), 'chain.json');
    const first = await startAnvil({ stateFile });
    const provider = new JsonRpcProvider(first.url);
    await provider.send('evm_mine', []);
    await provider.send('evm_mine', []);
    provider.destroy();
    await first.stop();

    const second = await startAnvil({ stateFile });
    try {
      expect(await blockNumber(second.url)).toBe(2);
    } finally {
      await second.stop();
    }
  });

  it('says why when anvil cannot listen', async () => {
    const taken = await startAnvil();
    try {
      const port = Number(new URL(taken.url).port);
      const failure = await startAnvil({ port }).catch((error: unknown) => error);
      expect(isEipError(failure, 'IO_ERROR')).toBe(true);
      expect((failure as Error).message).toMatch(/^anvil exited with code \d+ before listening/);
    } finally {
      await taken.stop();
    }
  });
});
