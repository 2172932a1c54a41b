/** Shared output of the negotiation commands: text or JSON on stdout, optionally Fig. 6 as SVG. */
import { renameSync, writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Io } from '../../core/cli.js';
import { EipError } from '../../core/errors.js';
import { offersPlotSvg } from '../negotiation/plot-svg.js';
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
  if (options.plot !== undefined) writeAtomically(options.plot, offersPlotSvg(result));
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

function writeAtomically(path: string, content: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, content);
    renameSync(temporary, path);
  } catch (error) {
    const reason = (error as Error).message.replaceAll(temporary, path);
    throw new EipError('IO_ERROR', `--plot: cannot write ${path}: ${reason}`, {
      cause: error,
      details: { path },
    });
  }
}
