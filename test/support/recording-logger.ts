/** A logger that keeps each entry's level and message, for tests that check what was logged. */
import type { Logger } from '../../core/logger.js';

export interface LogEntry {
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  readonly message: string;
}

export function recordingLogger(): Logger & { readonly entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: LogEntry['level']) =>
    (first: object | string, message?: string): void => {
      entries.push({ level, message: typeof first === 'string' ? first : (message ?? '') });
    };
  const logger = {
    entries,
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: () => logger,
  };
  return logger;
}
