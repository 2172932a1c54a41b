/**
 * A pseudo-terminal pair from socat (Debian's `socat`): two serial devices wired to each other,
 * so RTU runs with real framing and no hardware. Where socat is missing the suites that need it
 * skip, except in CI (CI=true), where a missing service is a failure.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const HAS_SOCAT = spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
/** Run the suite when socat is here, and also in CI, where its absence must fail loudly. */
export const RUN_PTY_SUITES = HAS_SOCAT || process.env.CI === 'true';

export interface PtyPair {
  readonly a: string;
  readonly b: string;
  close(): Promise<void>;
}

export async function openPtyPair(): Promise<PtyPair> {
  if (!HAS_SOCAT)
    throw new Error('socat is not installed (apt-get install socat); .ci/run installs it');
  const dir = mkdtempSync(join(tmpdir(), 'eip-pty-'));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const child: ChildProcess = spawn(
    'socat',
    [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`],
    {
      stdio: 'ignore',
    },
  );
  const deadline = Date.now() + 5000;
  while (!(existsSync(a) && existsSync(b))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error('socat did not create the pseudo-terminal pair within 5 s');
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    a,
    b,
    close: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
