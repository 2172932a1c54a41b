/**
 * `eip-gateway run`'s composition on its embedded defaults: anvil with its state on disk and the
 * markets deployed once (a restart on the same data folder reuses them), the park broker, the
 * API, and InfluxDB when configured: a plant's readings land there at their own timestamps, and
 * without InfluxDB the gateway says so at start.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InfluxDB } from 'influx';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePayload, topic } from '../../core/messages/topics.js';
import { hashPassword } from '../../gateway/broker/credentials.js';
import { parseGatewayConfig } from '../../gateway/config.js';
import { startGateway } from '../../gateway/run.js';
import { type Influxd, RUN_INFLUX_SUITES, startInfluxd } from '../support/influxd.js';
import { outcomeReport } from '../support/negotiation-reports.js';
import { recordingLogger } from '../support/recording-logger.js';

const PLANT =
  '  plant-a: { address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", meters: { main: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC" } }';
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'eip-run-'));
  writeFileSync(
    join(dir, 'credentials.yaml'),
    `clients:\n  plant-a: { role: prosumer, password: "${await hashPassword('plant-a-secret')}" }\n`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(extra = '') {
  return parseGatewayConfig(
    `broker: { credentials: credentials.yaml, tcp: "127.0.0.1:0" }\napi: { listen: "127.0.0.1:0" }\n${extra}plants:\n${PLANT}\n`,
    'gateway.yaml',
  );
}

describe('eip-gateway run on embedded defaults', () => {
  it('starts anvil, deploys once, serves the API, and says it has no InfluxDB', async () => {
    const logger = recordingLogger();
    const first = await startGateway({ config: config(), baseDir: dir, logger });
    const manifest = readFileSync(join(dir, 'gateway-data/chain/deployment.json'), 'utf8');
    try {
      const status = await (await fetch(`${first.apiUrl}/api/status`)).json();
      const forecast = await fetch(`${first.apiUrl}/api/forecast?utility=biogas`);
      expect(forecast.status).toBe(503);
      expect(((await forecast.json()) as { error: { message: string } }).error.message).toMatch(
        /no InfluxDB configured/,
      );
      expect(status).toMatchObject({ chainId: 31337, contracts: { token: first.manifest.token } });
      expect(logger.entries.map((e) => e.message)).toEqual(
        expect.arrayContaining([
          'no chain configured: started anvil',
          'markets deployed',
          'plants enrolled',
          'demo tokens minted',
          expect.stringMatching(/^no InfluxDB configured/),
        ]),
      );
    } finally {
      await first.stop();
    }
    // Again on the same folder: the chain comes back from its state file, nothing is redeployed.
    const again = recordingLogger();
    const second = await startGateway({ config: config(), baseDir: dir, logger: again });
    try {
      expect(second.manifest.token).toBe(first.manifest.token);
      expect(readFileSync(join(dir, 'gateway-data/chain/deployment.json'), 'utf8')).toBe(manifest);
      expect(again.entries.map((e) => e.message)).not.toContain('markets deployed');
    } finally {
      await second.stop();
    }
  }, 60_000);

  describe.runIf(RUN_INFLUX_SUITES)('with InfluxDB', () => {
    let influxd: Influxd;
    beforeAll(async () => {
      influxd = await startInfluxd();
    });
    afterAll(() => influxd?.close());

    it('writes every reading a plant sends to InfluxDB at its own time', async () => {
      const gateway = await startGateway({
        config: config(`influx: { url: "${influxd.url}", database: eip }\n`),
        baseDir: dir,
        logger: recordingLogger(),
      });
      const plant = await mqtt.connectAsync(gateway.brokerUrl, {
        username: 'plant-a',
        password: 'plant-a-secret',
        reconnectPeriod: 0,
      });
      try {
        const measuredAt = Date.UTC(2026, 10, 25, 12, 0, 0, 123);
        for (let seq = 1; seq <= 3; seq++) {
          await plant.publishAsync(
            topic('meterReading', { prosumer: 'plant-a', meter: 'main' }),
            encodePayload('meterReading', {
              prosumer: 'plant-a',
              meter: 'main',
              utility: 'electricity',
              quantity: 'import_energy',
              value: 1000 + seq,
              unit: 'kWh',
              measured_at_ms: measuredAt + seq,
              seq,
              stale: false,
            }),
            { qos: 1 },
          );
        }
        // A request nobody answered: into the negotiation log behind the API, and InfluxDB.
        const negotiationId = `0x${'5a'.repeat(32)}`;
        // Within the log's retention (30 days by default), unlike the readings' fixed day.
        const endedAt = Date.now();
        await plant.publishAsync(
          topic('negotiationOutcome', { prosumer: 'plant-a' }),
          encodePayload(
            'negotiationOutcome',
            outcomeReport({
              negotiation_id: negotiationId,
              counterpart: null,
              outcome: 'no-counterpart',
              rounds: 0,
              started_at_ms: endedAt - 2_000,
              ended_at_ms: endedAt,
            }),
          ),
          { qos: 1 },
        );
        const influx = new InfluxDB(`${influxd.url}/eip`);
        let rows: { time: Date; value: number }[] = [];
        // The writer flushes within a second; bounded at 15 s.
        for (let tries = 0; rows.length < 3 && tries < 150; tries++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          rows = await influx
            .query<{ time: Date; value: number }>('SELECT value FROM reading', { precision: 'ms' })
            .catch(() => []);
        }
        // Readings, but no balances yet: the forecast says what it lacks.
        const forecast = await fetch(`${gateway.apiUrl}/api/forecast?utility=biogas`);
        expect(forecast.status).toBe(409);
        expect(((await forecast.json()) as { error: { message: string } }).error.message).toMatch(
          /needs a day of history/,
        );
        expect(rows.map((r) => [new Date(r.time).getTime(), r.value])).toEqual([
          [measuredAt + 1, 1001],
          [measuredAt + 2, 1002],
          [measuredAt + 3, 1003],
        ]);
        const listed = (await (await fetch(`${gateway.apiUrl}/api/negotiations`)).json()) as {
          items: { id: string; outcome: string }[];
        };
        expect(listed.items).toMatchObject([{ id: negotiationId, outcome: 'no-counterpart' }]);
        let negotiations: { time: Date; duration_ms: number }[] = [];
        for (let tries = 0; negotiations.length === 0 && tries < 150; tries++) {
          negotiations = await influx.query<{ time: Date; duration_ms: number }>(
            "SELECT duration_ms FROM negotiation WHERE outcome = 'no-counterpart'",
            { precision: 'ms' },
          );
          if (negotiations.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(negotiations.map((r) => [new Date(r.time).getTime(), r.duration_ms])).toEqual([
          [endedAt, 2_000],
        ]);
      } finally {
        await plant.endAsync(true);
        await gateway.stop();
      }
    }, 60_000);
  });
});
