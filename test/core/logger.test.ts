import { describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../../core/logger.js';

function capture() {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => lines.push(line) } };
}

describe('logger', () => {
  it('writes JSON lines with the name and level', () => {
    const { lines, destination } = capture();
    createLogger({ name: 'edge', destination }).info({ meter: 'm1' }, 'polled');
    const entry = JSON.parse(lines[0] ?? '{}');
    expect(entry).toMatchObject({ name: 'edge', msg: 'polled', meter: 'm1', level: 30 });
  });

  it('redacts secrets at any of the first three levels of a logged object', () => {
    const { lines, destination } = capture();
    const log = createLogger({ name: 'edge', destination });
    const key = `0x${'ab'.repeat(32)}`;
    log.info(
      { privateKey: key, config: { identity: { private_key: key, password: 'hunter2' } } },
      'start',
    );
    log.child({ secret: 'shh' }).warn('child');
    const text = lines.join('');
    expect(text).not.toContain(key);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('shh');
    expect(text).toContain('[redacted]');
  });

  it('respects the level and the silent logger does nothing', () => {
    const { lines, destination } = capture();
    createLogger({ name: 'x', level: 'warn', destination }).info('hidden');
    expect(lines).toHaveLength(0);
    expect(() => silentLogger.child({ a: 1 }).error({ b: 2 }, 'nothing')).not.toThrow();
  });
});
