/**
 * The logging seam. Code takes a `Logger` in its constructor; composition roots make one with
 * `createLogger` (pino: JSON lines, cheap when a level is off) and tests pass `silentLogger` or
 * their own. Keys that can hold secrets are redacted in the top three levels of a logged object,
 * so a careless `log.info({ config })` or `log.info({ config: { identity } })` cannot leak a
 * private key. (Token *amounts* are not secret and stay visible.)
 */
import { pino } from 'pino';

export interface LogFn {
  (message: string): void;
  (context: object, message?: string): void;
}

export interface Logger {
  readonly trace: LogFn;
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
  readonly fatal: LogFn;
  child(bindings: Readonly<Record<string, unknown>>): Logger;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const REDACTED_KEYS = [
  'privateKey',
  'private_key',
  'password',
  'passphrase',
  'mnemonic',
  'secret',
  'apiKey',
  'api_key',
  'accessToken',
  'access_token',
  'authorization',
];

export interface LoggerOptions {
  readonly name: string;
  readonly level?: LogLevel;
  /** Where lines go; stderr by default so that stdout stays for a command's output. */
  readonly destination?: { write(line: string): unknown };
}

export function createLogger(options: LoggerOptions): Logger {
  const redact = REDACTED_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      redact: { paths: redact, censor: '[redacted]' },
    },
    options.destination ?? pino.destination(2),
  );
}

const ignore: LogFn = () => undefined;

export const silentLogger: Logger = {
  trace: ignore,
  debug: ignore,
  info: ignore,
  warn: ignore,
  error: ignore,
  fatal: ignore,
  child: () => silentLogger,
};
