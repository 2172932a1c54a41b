/**
 * eip-meter: reads a meter of one of the bundled profiles (hardware/meters) over Modbus TCP or
 * RTU, every `interval` seconds and on any input message, with the edge agent's own reader (one
 * request at a time, contiguous registers in one request). One message per quantity.
 */
import { z } from 'zod';
import { isEipError } from '../../core/errors.js';
import { describeLink, ModbusReader, type ModbusTarget } from '../../edge/meters/modbus-client.js';
import { loadProfile, profileNames } from '../../edge/meters/profiles.js';
import { readProfile } from '../../edge/meters/reader.js';
import { BAUD_RATES, FRAMINGS } from '../../edge/meters/serial-line.js';
import { decimal, parseConfig, setUp } from './config.js';
import { defineNode, type Node, type NodeAPI, type NodeDef, type NodeMessage } from './red.js';
import { brief, clock, failing, stale, waiting, working } from './status.js';

const meterSchema = z
  .object({
    profile: z.string().min(1, 'choose a meter profile'),
    transport: z.enum(['tcp', 'rtu']),
    host: z.string().trim(),
    port: decimal.pipe(z.number().int().min(1).max(65535)),
    device: z.string().trim(),
    baud: decimal.pipe(
      z.number().refine((baud) => (BAUD_RATES as readonly number[]).includes(baud), {
        message: `must be one of ${BAUD_RATES.join(', ')}`,
      }),
    ),
    framing: z.enum(FRAMINGS),
    // Modbus unit ids 1-247; 0 is broadcast, which nothing answers.
    unit: decimal.pipe(z.number().int().min(1).max(247)),
    interval: decimal.pipe(
      z.number().refine((s) => s === 0 || s >= 0.1, {
        message: 'must be 0 (read on input only) or at least 0.1 seconds',
      }),
    ),
  })
  .superRefine((c, ctx) => {
    if (c.transport === 'tcp' && c.host === '') {
      ctx.addIssue({ code: 'custom', path: ['host'], message: 'Modbus TCP needs a host' });
    }
    if (c.transport === 'rtu' && c.device === '') {
      ctx.addIssue({ code: 'custom', path: ['device'], message: 'Modbus RTU needs a device' });
    }
  })
  .transform((c) => ({
    profile: c.profile,
    intervalMs: c.interval * 1000,
    target: {
      link:
        c.transport === 'tcp'
          ? { kind: 'tcp', host: c.host, port: c.port }
          : { kind: 'rtu', path: c.device, baudRate: c.baud, framing: c.framing },
      unit: c.unit,
    } satisfies ModbusTarget,
  }));

function meterNode(node: Node, def: NodeDef): void {
  const settings = setUp(node, () => {
    const config = parseConfig(meterSchema, def);
    return { config, profile: loadProfile(config.profile) };
  });
  if (settings === undefined) return;
  const { config, profile } = settings;
  const { target } = config;
  const meter = `${config.profile} unit ${target.unit} at ${describeLink(target.link)}`;
  let reader: ModbusReader | undefined;
  let lastGood: number | undefined;
  let closed = false;
  // One read at a time, as on the bus: an input message waits for the timer's read to finish.
  let queue: Promise<unknown> = Promise.resolve();

  async function read(): Promise<NodeMessage[]> {
    try {
      reader ??= await ModbusReader.connect(target);
      const readings = await readProfile(reader, profile);
      lastGood = Date.now();
      if (!closed) node.status(working(`${readings.length} values at ${clock(lastGood)}`));
      return readings.map(({ quantity, value }) => ({
        topic: quantity.name,
        payload: value,
        quantity: quantity.name,
        unit: quantity.unit,
        measures: quantity.measures,
        phase: quantity.phase,
        utility: profile.utility,
        profile: config.profile,
        meter,
        measured_at_ms: lastGood,
      }));
    } catch (error) {
      // Transport trouble (no answer, a dropped link) may leave the connection half-dead: the
      // next read opens a new one. A Modbus exception came over a working link.
      if (isEipError(error) && error.retryable) {
        const dropped = reader;
        reader = undefined;
        await dropped?.close();
      }
      if (!closed) {
        node.status(
          lastGood === undefined
            ? failing(error)
            : stale(`stale since ${clock(lastGood)}: ${brief(error)}`),
        );
      }
      throw error;
    }
  }

  function queued(): Promise<NodeMessage[]> {
    const run = queue.then(read);
    queue = run.catch(() => undefined);
    return run;
  }

  let polling = false;
  const poll = () => {
    // A slow meter must not pile up reads: skip the tick while the last one still runs.
    if (polling) return;
    polling = true;
    queued()
      .then(
        (messages) => {
          if (!closed) for (const msg of messages) node.send(msg);
        },
        (error: Error) => {
          if (!closed) node.error(error, { topic: config.profile, meter });
        },
      )
      .finally(() => {
        polling = false;
      });
  };

  node.status(waiting(`reading ${meter}`));
  const timer = config.intervalMs > 0 ? setInterval(poll, config.intervalMs) : undefined;
  if (timer) poll();

  node.on('input', (msg, send, done) => {
    queued().then((messages) => {
      for (const reading of messages) send({ ...msg, ...reading });
      done();
    }, done);
  });
  node.on('close', (_removed, done) => {
    closed = true;
    clearInterval(timer);
    queue
      .then(() => reader?.close())
      .then(
        () => done(),
        () => done(),
      );
  });
}

const registerMeter = defineNode('eip-meter', (_RED, node, def) => meterNode(node, def));

export default function register(RED: NodeAPI): void {
  registerMeter(RED);
  // The edit dialog's list of meters: the profiles bundled with the package.
  RED.httpAdmin.get(
    '/eip-market/profiles',
    RED.auth.needsPermission('eip-meter.read'),
    (_request, response) => {
      response.json(
        profileNames().map((name) => {
          const { manufacturer, model, utility } = loadProfile(name);
          return { name, manufacturer, model, utility };
        }),
      );
    },
  );
}
