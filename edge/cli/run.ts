/**
 * `eip-edge run`: the composition root of the agent. Loads the config, connects MQTT.js with the
 * agent's settings, unlocks the identity, and runs until SIGINT or SIGTERM (systemd's stop).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { type Io, listenForStop } from '../../core/cli.js';
import { createLogger } from '../../core/logger.js';
import { EdgeAgent } from '../agent/agent.js';
import { loadConfig } from '../config/load.js';
import { loadIdentity, METER_KEY_ENV } from '../identity.js';

/** The package version, from the nearest package.json above this file (source or dist/). */
function softwareVersion(): string | undefined {
  for (
    let dir = dirname(fileURLToPath(import.meta.url));
    dir !== dirname(dir);
    dir = dirname(dir)
  ) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'eip-market') return pkg.version;
    } catch {
      // not here; keep looking upward
    }
  }
  return undefined;
}

export async function runAgent(file: string, io: Io, env = process.env): Promise<void> {
  // The learned policies' files are read and checked here, once, with the config.
  const { config, baseDir, policies } = loadConfig(file);
  const version = softwareVersion();
  const logger = createLogger({
    name: 'eip-edge',
    level: config.log_level,
    destination: io.stdout,
  });
  const agent = new EdgeAgent({
    config,
    baseDir,
    policies,
    logger,
    ...(version && { softwareVersion: version }),
    identity: () => loadIdentity({ keystore: config.identity.keystore, baseDir, env }),
    meterIdentity: () =>
      loadIdentity({
        keystore: config.meter_identity?.keystore,
        baseDir,
        env,
        keyEnv: METER_KEY_ENV,
      }),
    connectMqtt: ({ will }) => {
      const password = env[config.mqtt.password_env];
      const client = mqtt.connect(config.mqtt.url, {
        clientId: `eip-edge-${config.prosumer}`,
        ...(config.mqtt.username && { username: config.mqtt.username }),
        ...(password && { password }),
        will: { ...will, qos: 1, retain: true },
        reconnectPeriod: 2000,
        connectTimeout: 10_000,
        // MQTT.js otherwise pre-builds a Buffer for each of the 65,536 packet ids: 8 MB of a
        // Raspberry Pi's memory to save microseconds on a few packets a second.
        writeCache: false,
      });
      // MQTT.js leaves Nagle on: small QoS 1 packets would wait up to 40 ms for delayed ACKs.
      client.on('connect', () =>
        (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true),
      );
      return client;
    },
  });
  const stop = listenForStop();
  try {
    await agent.start();
  } catch (error) {
    stop.dispose();
    await agent.stop();
    throw error;
  }
  logger.info({ prosumer: config.prosumer, config: file }, 'edge agent started');
  logger.info({ signal: await stop.stopped }, 'stopping');
  await agent.stop();
}
