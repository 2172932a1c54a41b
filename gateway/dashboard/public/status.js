/**
 * The two status lines: whether live updates are flowing (in the header, a polite live region, so
 * a screen reader hears when they stop) and how far the gateway has indexed the chain (in the
 * footer, updated with every block, so not announced).
 *
 * @typedef {import('../wire.js').Status} Status
 * @typedef {import('./live.js').LinkState} LinkState
 */
import { getJson } from './api.js';

/** @type {Record<LinkState, string>} */
const LINK_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline, retrying',
};

/**
 * @param {HTMLElement} line
 * @param {LinkState} state
 */
export function showLinkState(line, state) {
  line.textContent = LINK_TEXT[state];
  line.dataset.state = state;
}

/** @param {HTMLElement} line */
export async function showChainState(line) {
  try {
    /** @type {Status} */
    const status = await getJson('/api/status');
    const head = status.headBlock === null ? '' : ` of ${status.headBlock}`;
    const node = status.nodeReachable ? '' : ` The chain node is unreachable: ${status.lastError}.`;
    line.textContent = `Chain ${status.chainId}: indexed to block ${status.indexedBlock}${head}.${node}`;
  } catch (error) {
    line.textContent = `Chain status unavailable: ${error instanceof Error ? error.message : error}`;
  }
}
