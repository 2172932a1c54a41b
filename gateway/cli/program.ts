/**
 * `eip-gateway`: the gateway's command line: `run` (broker, relay, oracle together), the broker
 * alone, password hashes for its credentials file, API tokens for machine clients of the HTTP
 * API, and deploying the market contracts. A thin composition root: flags in, modules wired, one
 * line per failure (see core/cli.ts).
 */
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Command } from 'commander';
import { isAddress, JsonRpcProvider, NonceManager, Wallet } from 'ethers';
import type { z } from 'zod';
import {
  commandOutput,
  type Io,
  listenForStop,
  parseHostPort,
  reportFailure,
} from '../../core/cli.js';
import { EipError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import { id } from '../../core/messages/schemas.js';
import { newApiToken, tokenExpiry } from '../auth/tokens.js';
import { startParkBroker } from '../broker/broker.js';
import { hashPassword, loadCredentials } from '../broker/credentials.js';
import { mosquittoAcl, mosquittoClients, mosquittoConf } from '../broker/mosquitto.js';
import { ANVIL_CHAIN_ID, ANVIL_DEV_KEY } from '../chain/anvil.js';
import { DEFAULT_GRACE_PERIOD, deployMarkets, MAX_GRACE_PERIOD } from '../chain/deploy.js';
import { writeManifest } from '../chain/manifest.js';
import { loadGatewayConfig } from '../config.js';
import { startGateway } from '../run.js';

/** Anvil's default address: `npx anvil` serves it. */
export const DEFAULT_RPC = 'http://127.0.0.1:8545';
export const KEY_ENV = 'EIP_DEPLOYER_KEY';
export const PASSWORD_ENV = 'EIP_BROKER_PASSWORD';

interface BrokerFlags {
  readonly credentials: string;
  readonly tcp: string;
  readonly ws?: string;
  readonly tls?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string;
}

interface TokenFlags {
  readonly name: string;
  readonly operator?: true;
  readonly plant?: string;
  readonly expires?: string;
}

interface DeployFlags {
  readonly rpc: string;
  readonly out: string;
  readonly operator?: string;
  readonly provider?: string;
  readonly grace: string;
}

function program(io: Io, env: NodeJS.ProcessEnv): Command {
  const root = new Command('eip-gateway')
    .description('Gateway of the eco-industrial park utility market.')
    .exitOverride()
    .configureOutput(commandOutput(io));

  root
    .command('run')
    .summary('run the gateway: broker, relay to the chain, delivery oracle')
    .description(
      'Run the gateway from its config file until SIGINT or SIGTERM. Without a chain in the config it starts anvil with its state in data_dir, deploys the markets once and mints demo tokens; without influx it writes no time series. Logs JSON lines on stdout.',
    )
    .requiredOption('--config <file>', 'the gateway config (YAML)')
    .action(async (flags: { config: string }) => {
      const { config, baseDir } = loadGatewayConfig(flags.config);
      const logger = createLogger({
        name: 'eip-gateway',
        level: config.log_level,
        destination: io.stdout,
      });
      const stop = listenForStop();
      const gateway = await startGateway({ config, baseDir, logger, env }).catch(
        (error: unknown) => {
          stop.dispose();
          throw error;
        },
      );
      logger.info({ signal: await stop.stopped }, 'stopping');
      await gateway.stop();
    });

  root
    .command('broker')
    .summary("run the park's MQTT broker alone, with logins and the ACL")
    .description(
      "Run the park's MQTT broker until SIGINT or SIGTERM: every client logs in with the credentials file (see eip-gateway passwd) and the ACL of the topic catalogue applies. Logs JSON lines on stdout.",
    )
    .requiredOption('--credentials <file>', 'YAML file of clients, roles and password hashes')
    .option('--tcp <host:port>', 'MQTT over TCP', '0.0.0.0:1883')
    .option('--ws <host:port>', 'MQTT over WebSocket, path /mqtt')
    .option('--tls <host:port>', 'MQTT over TLS (with --cert and --key)')
    .option('--cert <file>', "the broker's TLS certificate (PEM)")
    .option('--key <file>', "the broker's TLS key (PEM)")
    .option('--ca <file>', 'CA whose client certificates log devices in without a password')
    .action(async (flags: BrokerFlags) => {
      const credentials = loadCredentials(flags.credentials);
      if (flags.tls !== undefined && (flags.cert === undefined || flags.key === undefined))
        throw new EipError('INVALID_ARGUMENT', '--tls needs --cert and --key');
      const tcp = parseHostPort(flags.tcp, '--tcp', { listener: true });
      const ws =
        flags.ws === undefined ? undefined : parseHostPort(flags.ws, '--ws', { listener: true });
      const tls =
        flags.tls === undefined
          ? undefined
          : {
              ...parseHostPort(flags.tls, '--tls', { listener: true }),
              cert: flags.cert as string,
              key: flags.key as string,
              ...(flags.ca !== undefined && { ca: flags.ca }),
            };
      const logger = createLogger({ name: 'eip-gateway', destination: io.stdout });
      const stop = listenForStop();
      const broker = await startParkBroker({
        credentials,
        tcp,
        ...(ws && { ws }),
        ...(tls && { tls }),
        logger,
      }).catch((error: unknown) => {
        stop.dispose();
        throw error;
      });
      logger.info({ ...broker.urls, clients: credentials.size }, 'broker listening');
      logger.info({ signal: await stop.stopped }, 'stopping');
      await broker.close();
    });

  root
    .command('mosquitto')
    .summary('write a Mosquitto configuration and ACL for the park from the credentials file')
    .description(
      "Write mosquitto.conf and acl (the park's logins and topic rules, from the topic catalogue and the roles in the credentials file) into a folder, for running the park on Mosquitto 2.0 instead of the embedded broker. Passwords are set with mosquitto_passwd; see gateway/broker/MOSQUITTO.md.",
    )
    .requiredOption('--credentials <file>', 'YAML file of clients and roles')
    .requiredOption('--dir <dir>', 'where to write mosquitto.conf and acl')
    .option('--listen <host:port>', 'the MQTT listener', '0.0.0.0:1883')
    .option('--persistence <dir>', "Mosquitto's persistence folder", '/var/lib/mosquitto/')
    .action((flags: { credentials: string; dir: string; listen: string; persistence: string }) => {
      let text: string;
      try {
        text = readFileSync(flags.credentials, 'utf8');
      } catch (error) {
        throw new EipError(
          'INVALID_ARGUMENT',
          `cannot read ${flags.credentials}: ${(error as Error).message}`,
        );
      }
      const clients = mosquittoClients(text, flags.credentials);
      const dir = resolve(flags.dir);
      mkdirSync(dir, { recursive: true });
      const acl = join(dir, 'acl');
      writeFileSync(acl, mosquittoAcl(clients));
      writeFileSync(
        join(dir, 'mosquitto.conf'),
        mosquittoConf({
          listeners: [parseHostPort(flags.listen, '--listen')],
          passwordFile: join(dir, 'passwd'),
          aclFile: acl,
          persistenceDir: flags.persistence,
        }),
      );
      io.stdout.write(
        `${join(dir, 'mosquitto.conf')}\n${acl}\nnext: mosquitto_passwd -c ${join(dir, 'passwd')} USER, for each of the ${clients.length} clients\n`,
      );
    });

  root
    .command('passwd')
    .summary("hash a device's broker password for the credentials file")
    .description(
      `Print the scrypt hash of the password in $${PASSWORD_ENV}, for a client's "password:" in the broker's credentials file. The password itself never goes in the file, nor on a command line.`,
    )
    .action(async () => {
      const secret = env[PASSWORD_ENV];
      if (secret === undefined || secret.length < 12) {
        throw new EipError(
          'INVALID_ARGUMENT',
          `put the password (12 characters at least) in $${PASSWORD_ENV}`,
        );
      }
      io.stdout.write(`${await hashPassword(secret)}\n`);
    });

  root
    .command('token')
    .summary('make an API token for a machine client of the HTTP API (Node-RED, a script)')
    .description(
      'Print a new API token on stdout, and on stderr the entry to add under auth.tokens in the gateway config: the name, what the token may see (everything, as the park operator, or one plant\'s data) and the token\'s SHA-256. Only the hash goes into the config; the token is shown this once. A client sends it as "Authorization: Bearer <token>"; the gateway accepts it once restarted with the entry.',
    )
    .requiredOption('--name <name>', 'its name in auth.tokens: who uses it, e.g. node-red-biogas')
    .option('--operator', "the park operator's view: everything")
    .option('--plant <id>', "one plant's view: a plant id of the config's plants:")
    .option(
      '--expires <date>',
      'refused from then on: an ISO 8601 date (from 00:00 UTC) or date-time with zone',
    )
    .action((flags: TokenFlags) => {
      const name = parsedFlag('--name', id, flags.name);
      if ((flags.operator === true) === (flags.plant !== undefined)) {
        throw new EipError('INVALID_ARGUMENT', 'give --operator or --plant ID, one of them');
      }
      const view =
        flags.plant === undefined
          ? 'role: operator'
          : `plant: ${parsedFlag('--plant', id, flags.plant)}`;
      const expires =
        flags.expires === undefined ? '' : `, expires: "${expiryFlag(flags.expires)}"`;
      const { token, hash } = newApiToken();
      // The token alone on stdout, for `TOKEN=$(eip-gateway token ...)` or a secret store; the
      // config entry on stderr, for the operator to read and paste.
      io.stdout.write(`${token}\n`);
      io.stderr.write(
        `Add this entry under auth.tokens in the gateway config, then restart the gateway:\n    ${name}: { ${view}, hash: "${hash}"${expires} }\n` +
          "The token (on stdout) is shown only now: give it to the client (Node-RED: the eip-gateway node's API token).\n",
      );
    });

  root
    .command('deploy')
    .summary('deploy the token and the three markets; write a deployment manifest')
    .description(
      `Deploy the UtilityToken and the biogas, electricity and heat markets, and write a deployment manifest. The deployer's private key is read from $${KEY_ENV}; on anvil (chain ${ANVIL_CHAIN_ID}) it defaults to anvil's first development account.`,
    )
    .option('--rpc <url>', 'JSON-RPC endpoint of the chain', DEFAULT_RPC)
    .option('--out <file>', 'where to write the manifest', 'deployment.json')
    .option(
      '--operator <address>',
      'park operator: admin, operator and minter roles (default: the deployer)',
    )
    .option('--provider <address>', "the main provider's wallet (default: the operator)")
    .option(
      '--grace <seconds>',
      'time allowed for late delivery reports after a window',
      String(DEFAULT_GRACE_PERIOD),
    )
    .action(async (flags: DeployFlags) => {
      const roles = {
        ...(flags.operator !== undefined && {
          operator: addressFlag('--operator', flags.operator),
        }),
        ...(flags.provider !== undefined && {
          provider: addressFlag('--provider', flags.provider),
        }),
      };
      const gracePeriod = secondsFlag('--grace', flags.grace, MAX_GRACE_PERIOD);
      checkWritable('--out', flags.out);
      const provider = new JsonRpcProvider(flags.rpc);
      try {
        const chainId = await chainIdOf(provider, flags.rpc);
        const wallet = new Wallet(deployerKey(env, chainId), provider);
        io.stderr.write(`Deploying to chain ${chainId} at ${flags.rpc} from ${wallet.address}\n`);
        const manifest = await deployMarkets({
          // Counts nonces locally: the provider's short response cache can hand back a stale one.
          signer: new NonceManager(wallet),
          ...roles,
          gracePeriod,
          onStep: (step) => io.stderr.write(`  ${step}\n`),
        });
        writeManifest(flags.out, manifest);
        io.stdout.write(`${flags.out}\n`);
      } finally {
        provider.destroy();
      }
    });
  return root;
}

async function chainIdOf(provider: JsonRpcProvider, rpc: string): Promise<number> {
  try {
    return Number((await provider._detectNetwork()).chainId);
  } catch (error) {
    throw new EipError('IO_ERROR', `no chain answers at ${rpc} (start one with: npx anvil)`, {
      cause: error,
      retryable: true,
    });
  }
}

function deployerKey(env: NodeJS.ProcessEnv, chainId: number): string {
  const key = env[KEY_ENV];
  if (key !== undefined && key !== '') {
    if (!/^0x[0-9a-fA-F]{64}$/.test(key)) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `$${KEY_ENV} must be a 0x-prefixed 32-byte hex private key`,
      );
    }
    return key;
  }
  if (chainId === ANVIL_CHAIN_ID) return ANVIL_DEV_KEY;
  throw new EipError(
    'INVALID_ARGUMENT',
    `set $${KEY_ENV} to the deployer's private key for chain ${chainId}`,
  );
}

function addressFlag(flag: string, value: string): string {
  // isAddress also checks the EIP-55 checksum of a mixed-case address.
  if (!isAddress(value) || !value.startsWith('0x') || BigInt(value) === 0n) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `${flag}: "${value}" is not a non-zero 0x-prefixed address (40 hex digits, checksum right if mixed-case)`,
    );
  }
  return value;
}

/** A flag's value checked by `schema`, which says what is wrong. */
function parsedFlag<T>(flag: string, schema: z.ZodType<T>, value: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new EipError(
    'INVALID_ARGUMENT',
    `${flag}: "${value}" ${result.error.issues[0]?.message ?? 'is not valid'}`,
  );
}

/** `--expires` as written, once it is a date the gateway accepts and still ahead. */
function expiryFlag(value: string): string {
  if (parsedFlag('--expires', tokenExpiry, value) <= Date.now()) {
    throw new EipError('INVALID_ARGUMENT', `--expires: "${value}" is already past`);
  }
  return value;
}

function secondsFlag(flag: string, value: string, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) > max) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `${flag}: "${value}" is not a whole number of seconds from 0 to ${max}`,
    );
  }
  return Number(value);
}

/** Fails before anything is deployed if the manifest could not be written afterwards. */
function checkWritable(flag: string, path: string): void {
  try {
    if (existsSync(path) && statSync(path).isDirectory()) throw new Error('it is a directory');
    accessSync(dirname(resolve(path)), constants.W_OK);
  } catch (error) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `${flag}: cannot write ${path}: ${(error as { code?: string }).code === 'ENOENT' ? 'its folder does not exist' : (error as Error).message}`,
    );
  }
}

/** Runs the CLI and returns its exit code; never throws. */
export async function main(
  argv: readonly string[],
  io: Io = process,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  try {
    await program(io, env).parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    return reportFailure('eip-gateway', error, io, { debug: Boolean(env.EIP_DEBUG) });
  }
}
