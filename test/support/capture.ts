/** Runs a CLI's `main` in-process with captured output, as the tools' tests all do. */
import type { Io } from '../../core/cli.js';

export interface Captured {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function capture(run: (io: Io) => Promise<number>): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const code = await run({
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  });
  return { code, stdout, stderr };
}
