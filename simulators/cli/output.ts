/**
 * Shared output of the commands: the negotiation commands' text or JSON on stdout, optionally
 * Fig. 6 as SVG; and the files they read and write, with errors that name the flag.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Io } from '../../core/cli.js';
import { EipError } from '../../core/errors.js';
import { offersPlotSvg, scenarioPlot } from '../negotiation/plot-svg.js';
import { reportJson } from '../negotiation/report-json.js';
import { reportText } from '../negotiation/report-text.js';
import type { ScenarioResult } from '../negotiation/scenario.js';

export interface OutputOptions {
  readonly json?: boolean;
  readonly plot?: string;
}

export function emit(result: ScenarioResult, options: OutputOptions, io: Io): void {
  // The plot is written first and atomically: a failed write leaves neither a torn file nor a
  // report on stdout that claims success.
  if (options.plot !== undefined)
    writeAtomically(options.plot, offersPlotSvg(scenarioPlot(result)), '--plot');
  io.stdout.write(
    options.json ? `${JSON.stringify(reportJson(result), null, 2)}\n` : reportText(result),
  );
  if (options.plot !== undefined && !options.json)
    io.stdout.write(`\nPlot written to ${options.plot}\n`);
}

export function checkPlotPath(path: string | undefined): void {
  if (path !== undefined && extname(path).toLowerCase() !== '.svg') {
    throw new EipError('INVALID_ARGUMENT', `--plot: the file must end in .svg (got "${path}")`, {
      details: { flag: '--plot' },
    });
  }
}

/** Writes the whole file or none of it: a failed write leaves no torn file behind. */
export function writeAtomically(path: string, content: string, flag: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, content);
    renameSync(temporary, path);
  } catch (error) {
    const reason = (error as Error).message.replaceAll(temporary, path);
    throw new EipError('IO_ERROR', `${flag}: cannot write ${path}: ${reason}`, {
      cause: error,
      details: { path },
    });
  }
}

/** A file a flag names, as text; a file that cannot be read is the flag's problem (exit 2). */
export function readText(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `${flag}: cannot read ${path}: ${(error as Error).message}`,
      {
        cause: error,
        details: { flag },
      },
    );
  }
}
