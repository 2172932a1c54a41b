/**
 * The park broker's ACL and configuration as Mosquitto 2.0 files, for a park that runs Mosquitto
 * instead of the gateway's embedded aedes: the same clients, roles and topic rules as acl.ts,
 * derived from the same topic catalogue, so a new topic needs no second edit. Pure: text in,
 * text out; MOSQUITTO.md beside this file says how an operator uses them.
 *
 * How Mosquitto 2.0 reads an `acl_file` (mosquitto.conf(5), and src/security_default.c, whose
 * behaviour the test of this module pins down against a running broker):
 *
 * - `topic ACCESS FILTER` lines after `user NAME` apply to that user; `pattern ACCESS FILTER` lines
 *   apply to every user, with `%u` replaced by its user name. A user's own lines are checked
 *   first, then the patterns; within each list a matching `deny` wins over any grant.
 * - ACCESS is a bit mask: `write` grants publishing only, `read` delivery only; `readwrite` both.
 * - A filter matches as a subscription does, except that a filter not starting with `$` never
 *   matches a topic that does: `#` does not reach `$SYS`. No client publishes into `$SYS`
 *   whatever the ACL says (src/security.c, acl__check_dollar), but for a bridge's state topic,
 *   which this ACL grants nobody.
 * - SUBSCRIBE is never checked ("FIXME - implement ACL subscription strings"): every filter is
 *   granted in the SUBACK and each message, live or retained, is checked for `read` on its own
 *   topic when it is delivered. A will is checked for `write` when it fires (the test shows it).
 * - A refused publish is dropped and logged ("Denied PUBLISH"); the connection stays.
 *
 * What this cannot express exactly as acl.ts enforces it (MOSQUITTO.md lists these too):
 *
 * 1. Subscriptions: acl.ts answers a filter that reaches beyond what the client may read with
 *    0x80 in the SUBACK; Mosquitto grants it and delivers only what `mayRead` allows. The same
 *    messages arrive; the client is not told its filter reaches too far.
 * 2. Refused publishes: aedes closes the connection, Mosquitto drops the message and keeps it.
 * 3. Level syntax: acl.ts requires every level a `{param}` fills to be an id (a-z, 0-9, -, _);
 *    a `+` matches any level. A client may publish, only under its own sender level, to a topic
 *    with a malformed other level (`eip/v1/market/BIOGAS/requests/plant-a`); the gateway's
 *    decodeMessage refuses it, as it refuses every payload that breaks a `bind`, on both brokers.
 * 4. Logins: the password file is kept apart from this ACL. A user in it without a `user` block
 *    here is a prosumer named by its user name (the patterns); aedes knows only the credentials
 *    file's clients. Give passwords to the clients of the credentials file only.
 * 5. `certificate: true` clients need a TLS listener with `use_identity_as_username`, which the
 *    generated configuration leaves to the operator; the ACL applies to them by name all the same.
 */
import { parse } from 'yaml';
import { z } from 'zod';
import { EipError } from '../../core/errors.js';
import { ID_PATTERN, id } from '../../core/messages/schemas.js';
import {
  subscription,
  TOPIC_NAMES,
  TOPIC_ROOT,
  TOPICS,
  type TopicName,
  topic,
} from '../../core/messages/topics.js';
import type { Principal } from './acl.js';
import { parseCredentials } from './credentials.js';

export interface MosquittoClient {
  /** The MQTT user name: the key in the credentials file, and the name in the password file. */
  readonly username: string;
  readonly principal: Principal;
}

type Access = 'read' | 'write' | 'readwrite' | 'deny';

interface Rule {
  readonly access: Access;
  readonly filter: string;
}

/** Mosquitto's user name substitution in `pattern` lines; it must be a whole level. */
const USER = '%u';
/** A plant's private subtree: one level or more under its id, never the id level itself. */
const plantSubtree = (plant: string) => `${TOPIC_ROOT}/plants/${plant}/+/#`;
/** What a meter publishes, as acl.ts's mayPublish lets it. */
const METER_TOPICS = ['meterReading', 'deliveryReport'] as const;

const edgeDoes = (name: TopicName, side: 'publishers' | 'subscribers') =>
  (TOPICS[name][side] as readonly string[]).includes('edge');

/** The catalogue pattern as an ACL filter: the `own` level filled with `user`, the others '+'. */
function filterOf(name: TopicName, own: string | null, user: string): string {
  return TOPICS[name].pattern.replace(/\{(\w+)\}/g, (_, level: string) =>
    level === own ? user : '+',
  );
}

/**
 * A prosumer's rules with its id as `user` (`%u` for the patterns): publish each edge topic with
 * its id in the sender level; read each topic edges read with its id in the audience level, or
 * every such topic when it has none; read and write its own plant's subtree.
 */
function prosumerRules(user: string): { readonly name: string; readonly rules: Rule[] }[] {
  const perTopic = TOPIC_NAMES.map((name) => {
    const { sender, audience } = TOPICS[name];
    const rules: Rule[] = [];
    if (edgeDoes(name, 'publishers') && sender)
      rules.push({ access: 'write', filter: filterOf(name, sender, user) });
    if (edgeDoes(name, 'subscribers'))
      rules.push({ access: 'read', filter: filterOf(name, audience, user) });
    return { name, rules };
  });
  return [
    ...perTopic.filter(({ rules }) => rules.length > 0),
    { name: 'own plant subtree', rules: [{ access: 'readwrite', filter: plantSubtree(user) }] },
  ];
}

/** Whether some topic matches both filters: every level equal or '+', until a '#'. */
function overlap(a: string, b: string): boolean {
  const [x, y] = [a.split('/'), b.split('/')];
  for (let i = 0; ; i++) {
    const [p, q] = [x[i], y[i]];
    if (p === '#' || q === '#') return true;
    if (p === undefined || q === undefined) return p === q;
    if (p !== q && p !== '+' && q !== '+') return false;
  }
}

/**
 * A meter's own lines. The patterns give every user a prosumer's rights under its user name, so
 * each is denied here (a matching `deny` in the user's list ends the check before the patterns);
 * a deny that also matched the meter's own topics would take them away, so that is an error.
 */
function meterRules(username: string, prosumer: string, meter: string): Rule[] {
  const grants: Rule[] = [
    ...METER_TOPICS.map((name) => ({
      access: 'write' as const,
      filter: topic(name, { prosumer, meter }),
    })),
    // A plant's devices publish into its subtree; only the plant reads it (acl.ts).
    { access: 'write', filter: plantSubtree(prosumer) },
  ];
  const denials: Rule[] = prosumerRules(username).flatMap(({ rules }) =>
    rules.map(({ filter }) => ({ access: 'deny' as const, filter })),
  );
  for (const denial of denials) {
    const clash = grants.find((grant) => overlap(grant.filter, denial.filter));
    if (clash) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `meter user "${username}": denying it the prosumer rights Mosquitto's patterns give its name (${denial.filter}) would deny its own ${clash.filter}; give the meter a user name other than a prosumer id it publishes under`,
        { details: { username, filter: denial.filter } },
      );
    }
  }
  return [...grants, ...denials];
}

/** The operator reads everything, `$SYS` too, and publishes every topic of the park. */
function operatorRules(): Rule[] {
  return [
    { access: 'read', filter: '#' },
    // '#' does not reach topics starting with '$', so $SYS is granted by name: read only.
    { access: 'read', filter: '$SYS/#' },
    ...TOPIC_NAMES.map((name) => ({ access: 'write' as const, filter: subscription(name) })),
    { access: 'write', filter: plantSubtree('+') },
  ];
}

function checkClients(clients: readonly MosquittoClient[]): void {
  const seen = new Set<string>();
  for (const { username, principal } of clients) {
    // The name goes into ACL lines: no spaces, '/', '+' or '#' can change what they mean.
    if (!ID_PATTERN.test(username)) {
      throw new EipError('INVALID_ARGUMENT', `user name "${username}" is not an id`, {
        details: { username },
      });
    }
    if (seen.has(username)) {
      throw new EipError('INVALID_ARGUMENT', `user "${username}" is listed twice`, {
        details: { username },
      });
    }
    seen.add(username);
    if (principal.role === 'prosumer' && principal.prosumer !== username) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `prosumer "${principal.prosumer}" must log in as "${principal.prosumer}", not "${username}": the ACL patterns read its id from its user name`,
        { details: { username } },
      );
    }
  }
}

const line = (keyword: 'pattern' | 'topic') => (rule: Rule) =>
  `${keyword} ${rule.access} ${rule.filter}`;

/**
 * The `acl_file` for these clients. Prosumers need no lines of their own: the patterns cover any
 * of them by user name. Meters and operators get a `user` block each.
 */
export function mosquittoAcl(clients: readonly MosquittoClient[]): string {
  checkClients(clients);
  const prosumers = clients.filter((c) => c.principal.role === 'prosumer').map((c) => c.username);
  const out = [
    '# Mosquitto 2.0 acl_file of the park, generated by gateway/broker/mosquitto.ts from the',
    '# topic catalogue and the credentials file: generate it again when either changes.',
    '# Comments must be lines of their own: Mosquitto reads the rest of a line as the topic.',
    '',
    '# Prosumers: every user without a "user" block below, its user name (%u) its prosumer id.',
    `# The credentials file lists: ${prosumers.join(', ') || '(none)'}.`,
    '# Lines without %u (what every edge reads) make Mosquitto warn at start: expected.',
    ...prosumerRules(USER).flatMap(({ name, rules }) => [
      `# ${name}`,
      ...rules.map(line('pattern')),
    ]),
  ];
  for (const { username, principal } of clients) {
    if (principal.role === 'prosumer') continue;
    const rules =
      principal.role === 'meter'
        ? meterRules(username, principal.prosumer, principal.meter)
        : operatorRules();
    const who =
      principal.role === 'meter'
        ? `meter "${principal.meter}" of ${principal.prosumer}: its readings and delivery reports and its plant's subtree, nothing else`
        : 'operator: reads everything, publishes every topic of the park, never into $SYS';
    out.push('', `# ${who}`, `user ${username}`, ...rules.map(line('topic')));
  }
  return `${out.join('\n')}\n`;
}

const roles = z.object({
  clients: z.record(
    z.string(),
    z.discriminatedUnion('role', [
      z.object({ role: z.literal('operator') }),
      z.object({ role: z.literal('prosumer') }),
      z.object({ role: z.literal('meter'), prosumer: id, meter: id }),
    ]),
  ),
});

/**
 * The clients of a credentials file, by name and role. Its scrypt hashes cannot become
 * Mosquitto's PBKDF2 ones: the operator sets each password again with mosquitto_passwd.
 */
export function mosquittoClients(credentialsText: string, where: string): MosquittoClient[] {
  // The embedded broker's own check, so a file is judged the same for either broker.
  parseCredentials(credentialsText, where);
  const { clients } = roles.parse(parse(credentialsText));
  return Object.entries(clients).map(([username, entry]) => ({
    username,
    principal:
      entry.role === 'operator'
        ? { role: 'operator', name: username }
        : entry.role === 'prosumer'
          ? { role: 'prosumer', prosumer: username }
          : { role: 'meter', prosumer: entry.prosumer, meter: entry.meter },
  }));
}

export interface MosquittoListener {
  readonly host: string;
  readonly port: number;
}

export interface MosquittoConfOptions {
  /** MQTT over TCP; clients dial mqtt://HOST:PORT. */
  readonly listeners: readonly MosquittoListener[];
  readonly passwordFile: string;
  readonly aclFile: string;
  /** Where Mosquitto keeps mosquitto.db; the user it runs as must be able to write there. */
  readonly persistenceDir: string;
}

function setting(name: string, value: string): string {
  // A line break in a value would start a setting of the caller's choosing.
  if (/[\r\n]/.test(value) || value.trim() === '') {
    throw new EipError('INVALID_ARGUMENT', `mosquitto.conf ${name}: "${value}" is not a value`);
  }
  return `${name} ${value}`;
}

/** A minimal mosquitto.conf for the park: logins and the ACL on every listener, persistence. */
export function mosquittoConf(options: MosquittoConfOptions): string {
  if (options.listeners.length === 0)
    throw new EipError('INVALID_ARGUMENT', 'mosquitto.conf needs at least one listener');
  const listeners = options.listeners.map(({ host, port }) => {
    // Port 0 would make Mosquitto read the host as a Unix socket path (listener, mosquitto.conf(5)).
    if (!Number.isInteger(port) || port < 1 || port > 65_535)
      throw new EipError('INVALID_ARGUMENT', `listener port ${port} is not 1-65535`);
    return setting('listener', `${port} ${host}`);
  });
  const dir = options.persistenceDir.endsWith('/')
    ? options.persistenceDir
    : `${options.persistenceDir}/`;
  return [
    '# Mosquitto 2.0 configuration of the park broker, generated by gateway/broker/mosquitto.ts.',
    '# One set of logins and one ACL for every listener (per_listener_settings).',
    'per_listener_settings false',
    "# Every device logs in: 2.0's default, written out so that the file says so.",
    'allow_anonymous false',
    '# Made with mosquitto_passwd: one line per client of the credentials file.',
    setting('password_file', options.passwordFile),
    setting('acl_file', options.aclFile),
    '# The gateway keeps a persistent session (clean: false): QoS 1 messages queued for it and',
    '# the retained presence of the agents outlive a broker restart. Saved every minute and on',
    '# exit; the default, 30 minutes, would lose that much after a crash.',
    'persistence true',
    // Mosquitto appends the file name to the location as it is: the trailing '/' matters.
    setting('persistence_location', dir),
    'autosave_interval 60',
    '# The default queue of a client that is away, 1000 QoS 1 messages, is a few minutes of a',
    "# busy park's readings: past it Mosquitto drops them silently, after the edges had their PUBACK.",
    '# Bounded by memory instead: 64 MiB per client (mosquitto.conf(5): max_queued_bytes).',
    '# Not "max_queued_messages 0" (no maximum): before 2.0.17 it stops all delivery',
    '# (eclipse-mosquitto/mosquitto#2879), so a count that the bytes reach first.',
    'max_queued_messages 1000000',
    'max_queued_bytes 67108864',
    "# Small MQTT packets go at once, not after Nagle's algorithm waits for an ACK.",
    'set_tcp_nodelay true',
    ...listeners,
    '',
  ].join('\n');
}
