/**
 * Runs `npm run build` once before the suite, so tests that run the real `eip-sim` binary from
 * dist/ never test a stale build, and the build is the one users get (it also marks the bins
 * executable: tsc writes them 0644).
 */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  try {
    execFileSync('npm', ['run', 'build'], { stdio: 'pipe' });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(
      `npm run build failed:\n${stdout?.toString() ?? ''}${stderr?.toString() ?? ''}`,
    );
  }
}
