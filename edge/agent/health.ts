/**
 * The agent's HTTP face for operators: `GET /health` (JSON; 200 when healthy, 503 when degraded,
 * so a load balancer or `curl -f` can tell) and `GET /metrics` (Prometheus text, with Node's
 * process metrics such as resident memory). Values are read from the running parts when scraped,
 * so nothing has to remember to update a gauge.
 */
import { createServer, type Server } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { EipError } from '../../core/errors.js';

export interface HealthReport {
  readonly healthy: boolean;
  readonly [key: string]: unknown;
}

type Labels = Readonly<Record<string, string>>;
/** A source of one metric: labelled values read at scrape time. */
type Sample = () => readonly (readonly [Labels, number])[] | number;

export class Metrics {
  readonly registry = new Registry();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'eip_edge_' });
  }

  /** A monotonic count kept elsewhere (a counters object), exposed as a Prometheus counter. */
  counter(name: string, help: string, sample: Sample, labelNames: string[] = []): void {
    const last = new Map<string, number>();
    new Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        for (const [labels, value] of samples(sample)) {
          const key = JSON.stringify(labels);
          const delta = value - (last.get(key) ?? 0);
          // Counters only go up; a source that restarted from zero starts a new run.
          if (delta > 0) this.inc(labels, delta);
          last.set(key, value);
        }
      },
    });
  }

  gauge(name: string, help: string, sample: Sample, labelNames: string[] = []): void {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [labels, value] of samples(sample)) this.set(labels, value);
      },
    });
  }
}

function samples(sample: Sample): readonly (readonly [Labels, number])[] {
  const value = sample();
  return typeof value === 'number' ? [[{}, value]] : value;
}

export interface HealthServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startHealthServer(
  listen: { host: string; port: number },
  metrics: Metrics,
  report: () => HealthReport,
): Promise<HealthServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET') {
      response.writeHead(405, { allow: 'GET' }).end();
    } else if (path === '/health') {
      const body = report();
      response
        .writeHead(body.healthy ? 200 : 503, { 'content-type': 'application/json' })
        .end(`${JSON.stringify(body, null, 2)}\n`);
    } else if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) =>
          response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (error: Error) => response.writeHead(500).end(`${error.message}\n`),
      );
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('try /health or /metrics\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(
        new EipError(
          'IO_ERROR',
          `health endpoint cannot listen on ${listen.host}:${listen.port}: ${error.message}`,
          { cause: error },
        ),
      ),
    );
    server.listen(listen.port, listen.host, resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  return {
    url: `http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
