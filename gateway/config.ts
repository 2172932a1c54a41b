/**
 * The gateway's configuration: one YAML file, validated by this schema, with defaults for a
 * park on one machine. Without `chain` the gateway starts anvil with its state on disk and
 * deploys the markets once; without `influx` it writes no time series and says so. Relative
 * paths start at the config file's folder. Every problem is listed with its path (exit 2).
 *
 * ```yaml
 * broker: { credentials: credentials.yaml }    # or { url: mqtts://broker:8883, username: gateway }
 * plants:
 *   biogas-plant: { address: "0x...", meters: { gas-out: "0x..." } }
 * ```
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { EipError } from '../core/errors.js';
import { authConfigSchema } from './auth/config.js';
import { parkSchema } from './park.js';

const hostPort = z.string().regex(/^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/, 'must be HOST:PORT');
const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name');

const embeddedBroker = z.strictObject({
  credentials: z.string().min(1).meta({ description: 'Clients, roles and password hashes' }),
  tcp: hostPort.default('127.0.0.1:1883').meta({ description: 'MQTT over TCP' }),
  ws: hostPort.optional().meta({ description: 'MQTT over WebSocket, path /mqtt' }),
  tls: z
    .strictObject({
      listen: hostPort,
      cert: z.string().min(1),
      key: z.string().min(1),
      ca: z.string().min(1).optional(),
    })
    .optional()
    .meta({ description: 'MQTT over TLS; with ca, client certificates log devices in' }),
});

const externalBroker = z.strictObject({
  url: z
    .string()
    .regex(/^(mqtts?|wss?):\/\/\S+$/, 'must be an mqtt://, mqtts://, ws:// or wss:// URL')
    .meta({ description: 'An external broker (Mosquitto, EMQX) that enforces the park ACL' }),
  username: z.string().min(1).default('gateway'),
  password_env: envName.default('EIP_GATEWAY_MQTT_PASSWORD'),
});

export const gatewayConfigSchema = z
  .strictObject({
    data_dir: z.string().min(1).default('gateway-data').meta({
      description: 'The relay book, transaction log and embedded chain live here',
    }),
    broker: z.union([embeddedBroker, externalBroker]),
    chain: z
      .strictObject({
        rpc: z.url().meta({ description: 'JSON-RPC endpoint of the park chain' }),
        manifest: z.string().min(1).meta({ description: 'From eip-gateway deploy' }),
        key_env: envName.default('EIP_GATEWAY_KEY').meta({
          description: "The variable holding the operator's key, which pays relayed gas",
        }),
      })
      .optional()
      .meta({ description: 'Omitted: anvil is started with its state in data_dir' }),
    confirmations: z.number().int().min(1).max(100).default(1),
    replace_after_s: z.number().int().min(1).max(3600).default(30).meta({
      description: 'A transaction not mined after this long is sent again with a higher fee',
    }),
    grace_s: z.number().int().min(0).max(86_400).default(3600).meta({
      description: 'Embedded chain only: time for late delivery reports after a window',
    }),
    negotiation_retain_days: z.number().min(1).max(3660).default(30).meta({
      description:
        "How long the agents' reports of how negotiations ended are kept, for the agreement rate (about 300 bytes of memory each)",
    }),
    influx: z
      .strictObject({
        url: z.url(),
        database: z.string().min(1).default('eip'),
      })
      .optional()
      .meta({ description: 'InfluxDB 1.x HTTP API; omitted: no time series are written' }),
    api: z
      .union([
        z.literal(false),
        z.strictObject({
          listen: hostPort.default('127.0.0.1:8080').meta({
            description: 'HOST:PORT of the HTTP API and its event stream (port 0: any free port)',
          }),
        }),
      ])
      .default({ listen: '127.0.0.1:8080' })
      .meta({ description: 'Indexed contract events over HTTP (JSON) and server-sent events' }),
    auth: authConfigSchema.optional().meta({
      description:
        'Sign-in (OpenID Connect) for the dashboard and API; omitted: the API is open to anyone who reaches it (warned at start)',
    }),
    plants: parkSchema,
    log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
  })
  .refine((config) => config.auth === undefined || config.api !== false, {
    message: 'auth signs users in to the API: it needs api.listen, not api: false',
    path: ['auth'],
  });

export type GatewayConfig = z.output<typeof gatewayConfigSchema>;

export function parseGatewayConfig(text: string, where: string): GatewayConfig {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (error) {
    throw new EipError('INVALID_ARGUMENT', `${where}: ${(error as Error).message}`);
  }
  const result = gatewayConfigSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${where}: ${issue.path.join('.') || '(file)'}: ${issue.message}`,
    );
    throw new EipError('INVALID_ARGUMENT', problems.join('\n'), { details: { problems } });
  }
  return result.data;
}

export function loadGatewayConfig(file: string): { config: GatewayConfig; baseDir: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new EipError('INVALID_ARGUMENT', `cannot read ${file}: ${(error as Error).message}`);
  }
  return { config: parseGatewayConfig(text, file), baseDir: dirname(resolve(file)) };
}
