/**
 * Follows the gateway's live stream, GET /api/events (server-sent events).
 *
 * An EventSource reconnects by itself after a dropped connection, sending the id of the last
 * event it got as Last-Event-ID; the gateway then replays what was missed, or sends `reset` when
 * it no longer can. It gives up for good when a reconnection is answered with an error (a gateway
 * restarting behind a proxy answers 502), and a new EventSource cannot send an id. So after giving
 * up this opens a new one, waiting longer each time, and asks for everything to be fetched again
 * once it is open, as after `reset`. The first connection is such a new one too: lists are fetched
 * once it is open, so no event falls between the fetch and the stream.
 *
 * @typedef {import('../wire.js').StreamEvents} StreamEvents
 * @typedef {Exclude<keyof StreamEvents, 'reset'>} ChangeName
 * @typedef {{ [K in ChangeName]: { name: K, data: StreamEvents[K] } }[ChangeName]} Change
 * @typedef {'connecting' | 'live' | 'reconnecting' | 'offline'} LinkState
 */

/** @type {readonly ChangeName[]} */
const CHANGES = ['agreement', 'delivery', 'settlement', 'block'];
const FIRST_PAUSE_MS = 1000;
const LONGEST_PAUSE_MS = 30_000;

/**
 * @param {object} handlers
 * @param {string} handlers.url
 * @param {(change: Change) => void} handlers.onChange
 * @param {(why: 'connected' | StreamEvents['reset']['reason']) => void} handlers.onResync fetch
 *   everything shown again
 * @param {(state: LinkState) => void} handlers.onState
 * @returns {() => void} stops following
 */
export function followEvents({ url, onChange, onResync, onState }) {
  let pause = FIRST_PAUSE_MS;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /** @type {EventSource} */
  let source;

  const open = () => {
    source = new EventSource(url);
    let fresh = true;
    onState('connecting');
    source.addEventListener('open', () => {
      pause = FIRST_PAUSE_MS;
      onState('live');
      if (fresh) onResync('connected');
      fresh = false;
    });
    for (const name of CHANGES) {
      source.addEventListener(name, (event) => {
        onChange(/** @type {Change} */ ({ name, data: JSON.parse(event.data) }));
      });
    }
    source.addEventListener('reset', (event) => {
      /** @type {StreamEvents['reset']} */
      const { reason } = JSON.parse(event.data);
      onResync(reason);
    });
    source.addEventListener('error', () => {
      if (source.readyState !== EventSource.CLOSED) {
        onState('reconnecting');
        return;
      }
      // Scheduled before it is said, so that a handler may stop it.
      timer = setTimeout(open, pause);
      pause = Math.min(pause * 2, LONGEST_PAUSE_MS);
      onState('offline');
    });
  };

  open();
  return () => {
    clearTimeout(timer);
    source.close();
  };
}
