/**
 * The block explorer: the chain's status, the blocks that carry the park's transactions, and each
 * block and transaction with its contract events decoded (GET /api/status, /api/blocks,
 * /api/blocks/:number, /api/tx/:hash).
 *
 * @typedef {import('../../wire.js').Block} Block
 * @typedef {import('../../wire.js').BlockWithTransactions} BlockWithTransactions
 * @typedef {import('../../wire.js').Status} Status
 * @typedef {import('../../wire.js').Transaction} Transaction
 * @typedef {import('./view.js').View} View
 */
import { getJson } from '../api.js';
import { facts, h, table } from '../dom.js';
import { short, time } from '../format.js';
import { agreementLink, blockLink, empty, section, txLink } from './view.js';

const PAGE = 25;

/**
 * An event argument: agreement ids link to their agreement, the rest is shown whole.
 * @param {string} name
 * @param {unknown} value
 */
function argument(name, value) {
  if (name === 'agreementId' && typeof value === 'string') return agreementLink(value);
  return h('code', {}, typeof value === 'string' ? value : JSON.stringify(value));
}

/** @param {Transaction} tx */
function events(tx) {
  if (tx.events.length === 0) return empty('No events of the park’s contracts.');
  return table(
    `Events of transaction ${short(tx.hash)}`,
    ['Event', 'Contract', 'Arguments'],
    tx.events.map((event) => [
      event.name ?? 'a log no contract of the park describes',
      `${event.contract}${event.utility === null ? '' : ` (${event.utility})`} ${short(event.address)}`,
      facts(
        Object.entries(event.args).map(([name, value]) => [name, argument(name, value)]),
        'args',
      ),
    ]),
  );
}

/** @param {Transaction} tx */
function transaction(tx) {
  return [
    facts([
      ['Hash', h('code', {}, tx.hash)],
      ['Block', blockLink(tx.block)],
      ['Time', time(tx.timestamp)],
      ['Position in block', String(tx.index)],
      ['From', h('code', {}, tx.from)],
      ['To', tx.to === null ? 'a contract it created' : h('code', {}, tx.to)],
    ]),
    events(tx),
  ];
}

/** @param {Status} status */
function chain(status) {
  const head = status.headBlock === null ? 'not known yet' : String(status.headBlock);
  return section(
    'Chain',
    facts([
      ['Chain id', String(status.chainId)],
      ['Indexed up to block', String(status.indexedBlock)],
      ['Node’s head block', head],
      ['Blocks behind', status.lag === null ? '–' : String(status.lag)],
      [
        'Node',
        status.nodeReachable ? 'reachable' : `unreachable: ${status.lastError ?? 'no answer'}`,
      ],
    ]),
  );
}

/** @type {View} */
export const blocksView = {
  nav: 'explorer',
  title: () => 'Block explorer',
  reloadOn: ['block'],
  async load({ query }) {
    const before = query.get('before');
    const page = `/api/blocks?limit=${PAGE}${before ? `&before=${encodeURIComponent(before)}` : ''}`;
    /** @type {[Status, import('../../wire.js').Page<Block>]} */
    const [status, blocks] = await Promise.all([getJson('/api/status'), getJson(page)]);
    return () =>
      h(
        'div',
        {},
        chain(status),
        section(
          'Blocks with park transactions',
          blocks.items.length === 0
            ? empty('No block with the park’s transactions yet.')
            : table(
                'Blocks, newest first',
                [
                  'Block',
                  'Time',
                  'Hash',
                  'Park transactions',
                  { label: 'All transactions', numeric: true },
                ],
                blocks.items.map((b) => [
                  blockLink(b.number),
                  time(b.timestamp),
                  h('code', {}, short(b.hash)),
                  h(
                    'ul',
                    { class: 'inline' },
                    b.transactions.map((hash) => h('li', {}, txLink(hash))),
                  ),
                  String(b.txCount),
                ]),
              ),
          h(
            'p',
            { class: 'paging' },
            before && h('a', { href: '#/explorer' }, 'Newest blocks'),
            blocks.next !== null &&
              h('a', { href: `#/explorer?before=${blocks.next}` }, 'Older blocks'),
          ),
        ),
      );
  },
};

/** @type {View} */
export const blockView = {
  nav: 'explorer',
  title: ({ path }) => `Block ${path[1] ?? ''}`,
  reloadOn: [],
  async load({ path }) {
    /** @type {BlockWithTransactions} */
    const block = await getJson(`/api/blocks/${encodeURIComponent(path[1] ?? '')}`);
    return () =>
      h(
        'div',
        {},
        facts([
          ['Hash', h('code', {}, block.hash)],
          ['Parent hash', h('code', {}, block.parentHash)],
          ['Time', time(block.timestamp)],
          ['Transactions', `${block.transactions.length} of the park’s, ${block.txCount} in all`],
        ]),
        block.transactions.map((tx) =>
          section(`Transaction ${short(tx.hash)}`, ...transaction(tx)),
        ),
      );
  },
};

/** @type {View} */
export const txView = {
  nav: 'explorer',
  title: ({ path }) => `Transaction ${short(path[1] ?? '')}`,
  reloadOn: [],
  async load({ path }) {
    /** @type {Transaction} */
    const tx = await getJson(`/api/tx/${encodeURIComponent(path[1] ?? '')}`);
    return () => h('div', {}, ...transaction(tx));
  },
};
