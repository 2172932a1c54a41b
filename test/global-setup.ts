/**
 * Runs `npm run build` once before the suite, so tests that run the real `eip-sim` binary from
 * dist/ never test a stale build, and the build is the one users get (it also marks the bins
 * executable: tsc writes them 0644). EIP_SKIP_BUILD=1 skips it while iterating on suites that do
 * not run dist/ (never in CI, where the build is always tested).
 */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  if (process.env.EIP_SKIP_BUILD === '1' && process.env.CI !== 'true') return;
  try {
    execFileSync('npm', ['run', 'build'], { stdio: 'pipe' });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(
      `npm run build failed:\n${stdout?.toString() ?? ''}${stderr?.toString() ?? ''}`,
    );
  }
}
