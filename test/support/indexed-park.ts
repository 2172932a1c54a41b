/** The test park on anvil (test/contracts/park.ts) with an indexer following it, as the API's tests use it. */
import { silentLogger } from '../../core/logger.js';
import { Indexer } from '../../gateway/indexer/indexer.js';
import { type Park, startPark } from '../contracts/park.js';

export async function startIndexedPark(): Promise<{ park: Park; indexer: Indexer }> {
  const park = await startPark();
  const indexer = new Indexer({
    provider: park.provider,
    manifest: park.manifest,
    logger: silentLogger,
    pollMs: 20,
  });
  // Not awaited: it catches up in the background while the test sets up the rest.
  void indexer.start();
  return { park, indexer };
}
