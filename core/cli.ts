/**
 * How every command-line tool of the project ends: one line on stderr prefixed with the tool's
 * name, exit code 2 for bad usage and 1 for anything else, stack traces only on request
 * (EIP_DEBUG=1). Output streams are passed in, so tools run in-process in tests.
 */
import { EipError, type ErrorCode, isEipError } from './errors.js';

export interface Io {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/** Error codes that mean the user typed something wrong. */
export const USAGE_ERRORS: readonly ErrorCode[] = [
  'INVALID_ARGUMENT',
  'INVALID_PSI',
  'INVALID_AMOUNT',
  'UNKNOWN_UTILITY',
];

export interface FailureOptions {
  /** Also print the stack trace (the tools set it from EIP_DEBUG=1). */
  readonly debug?: boolean;
  /** Rewrites an EipError's message for this tool, e.g. to name the flag the user knows. */
  readonly message?: (message: string, details: Readonly<Record<string, unknown>>) => string;
}

/** Commander's errors are recognised by shape, so core does not depend on commander. */
function commanderError(
  error: unknown,
): { code: string; exitCode: number; message: string } | undefined {
  const candidate = error as { code?: unknown; exitCode?: unknown; message?: unknown } | null;
  return typeof candidate?.code === 'string' &&
    candidate.code.startsWith('commander.') &&
    typeof candidate.exitCode === 'number' &&
    typeof candidate.message === 'string'
    ? (candidate as { code: string; exitCode: number; message: string })
    : undefined;
}

/** Reports a failure of tool `name` on `io.stderr` and returns the exit code. */
export function reportFailure(
  name: string,
  error: unknown,
  io: Io,
  options: FailureOptions = {},
): number {
  const usage = commanderError(error);
  if (usage) {
    if (usage.exitCode === 0) return 0; // --help, --version
    // No command given: commander has already shown the usage on stderr; that is the message.
    if (usage.code === 'commander.help') return 2;
    const message = usage.message.replace(/^error: /, '').replace(/\.$/, '');
    io.stderr.write(`${name}: ${message} (see ${name} --help)\n`);
    return 2;
  }
  if (options.debug) io.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  if (isEipError(error)) {
    const message = options.message?.(error.message, error.details) ?? error.message;
    io.stderr.write(`${name}: ${message}\n`);
    return USAGE_ERRORS.includes(error.code) ? 2 : 1;
  }
  // ethers' errors carry the whole transaction in `message`; `shortMessage` is the readable part.
  const { shortMessage, message } = (error ?? {}) as { shortMessage?: unknown; message?: unknown };
  const text =
    typeof shortMessage === 'string'
      ? shortMessage
      : typeof message === 'string'
        ? message
        : String(error);
  io.stderr.write(`${name}: internal error: ${text} (EIP_DEBUG=1 shows more)\n`);
  return 1;
}

/**
 * Commander's output settings for a tool: help to `io`, and no message of its own for usage
 * errors, which `reportFailure` reports in the one-line format.
 */
export function commandOutput(io: Io) {
  return {
    writeOut: (text: string) => io.stdout.write(text),
    writeErr: (text: string) => io.stderr.write(text),
    outputError: () => undefined,
  };
}

export interface StopSignal {
  /** Resolves with the first SIGINT or SIGTERM. */
  readonly stopped: Promise<NodeJS.Signals>;
  /** Stops listening (when the tool ends for another reason, such as a failed start). */
  dispose(): void;
}

/**
 * Listens for SIGINT and SIGTERM. Call it before starting anything: a stop that arrives while a
 * tool is still starting then ends it cleanly once started, instead of Node's default of dying
 * with the signal (systemd and test harnesses stop a service at any moment).
 */
export function listenForStop(): StopSignal {
  let stop: (signal: NodeJS.Signals) => void = () => undefined;
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    stop = (signal) => {
      dispose();
      resolve(signal);
    };
  });
  const dispose = () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return { stopped, dispose };
}

/**
 * HOST:PORT as an installer types it (an IPv6 host in brackets). `listener`: port 0, any free
 * port, is allowed. `what` names the flag or key in the error.
 */
export function parseHostPort(
  text: string,
  what: string,
  options: { listener?: boolean } = {},
): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  const lowest = options.listener ? 0 : 1;
  if (!match?.[1] || !Number.isInteger(port) || port < lowest || port > 65535) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `${what}: "${text}" is not HOST:PORT (port ${lowest} to 65535)`,
    );
  }
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}
