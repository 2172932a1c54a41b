/** Services the suites run as child processes: a free port for one, and its end with the suite. */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';

/** A TCP port free on `host` now; the caller's service binds it a moment later. */
export { freePort } from '../../simulators/meters/meter-server.js';

export const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((resolve) => child.once('exit', () => resolve()));

/**
 * Kills `child` (by its pid, nothing else) when this process ends, however it ends. An `exit`
 * handler covers a normal end; a killed test worker runs none, so a watchdog `sh` reads a pipe
 * from this process and kills the child when the pipe closes. The watchdog goes when the child
 * does, so it never kills a later process that reuses the pid.
 */
export function killWithThisProcess(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined) return;
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);
  const watchdog = spawn('sh', ['-c', `read _ ; kill -KILL ${pid} 2>/dev/null`], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  // Neither the watchdog nor its pipe may keep this process alive.
  watchdog.unref();
  (watchdog.stdin as Socket | null)?.unref();
  child.once('exit', () => {
    process.removeListener('exit', onExit);
    watchdog.kill('SIGKILL');
  });
}
