/**
 * `eip-sim p1`: a simulated DSMR 5 smart meter writing P1 telegrams on a serial device until
 * stopped, for trying an edge agent's P1 port without a meter (one end of a socat pair).
 */
import { type Command, Option } from 'commander';
import { type Io, listenForStop } from '../../core/cli.js';
import { EipError } from '../../core/errors.js';
import { fromMilli, parseMilli } from '../../core/units.js';
import { P1_FAULTS, type P1SimFault, startP1Sim } from '../meters/p1-sim.js';
import { parsePositive } from './numbers.js';

interface P1Flags {
  readonly device: string;
  readonly baud: string;
  readonly interval: string;
  readonly power: string;
  readonly gasFlow: string;
  readonly fault?: P1SimFault[];
  readonly faultRate: string;
}

/** A share from 0 to 1, with at most three decimals. */
function parseShare(text: string, flag: string): number {
  const share = parseMilli(text, flag);
  if (share < 0 || share > 1000) {
    throw new EipError('INVALID_ARGUMENT', `${flag}: "${text}" is not a share from 0 to 1`, {
      details: { flag },
    });
  }
  return fromMilli(share);
}

export function addP1Command(root: Command, io: Io): void {
  root
    .command('p1')
    .summary('serve a simulated DSMR 5 smart meter on a serial device until stopped')
    .description(
      'Write DSMR 5 P1 telegrams, CRC-checked as a smart meter sends them on its P1 port, on a serial device until Ctrl-C. The import counter grows with --power and the gas counter with --gas-flow; --fault injects what a real P1 line shows.',
    )
    .requiredOption('--device <path>', 'serial device to write on, e.g. one end of a socat pair')
    .addOption(
      new Option('--baud <rate>', 'baud rate (DSMR 4 and 5: 115200; DSMR 2.2 and 3: 9600)')
        .choices(['115200', '9600'])
        .default('115200'),
    )
    .option('--interval <seconds>', 'seconds between telegrams (DSMR 5 sends one a second)', '1')
    .option(
      '--power <watts>',
      'power drawn from the grid; the import counter grows with it',
      '2300',
    )
    .option('--gas-flow <m3/h>', 'gas flow; the gas counter grows with it', '1')
    .addOption(
      new Option(
        '--fault <kind...>',
        'inject a fault: wrong CRC, telegram cut off, noise before it, written in pieces',
      ).choices(P1_FAULTS),
    )
    .option('--fault-rate <share>', 'share of telegrams that get each fault, 0 to 1', '1')
    .action(async (flags: P1Flags) => {
      const intervalS = fromMilli(parsePositive(flags.interval, '--interval'));
      const powerW = fromMilli(parsePositive(flags.power, '--power'));
      const gasFlowM3PerH = fromMilli(parsePositive(flags.gasFlow, '--gas-flow'));
      const faultRate = parseShare(flags.faultRate, '--fault-rate');
      const stop = listenForStop();
      const sim = await startP1Sim({
        path: flags.device,
        baudRate: Number(flags.baud),
        intervalMs: intervalS * 1000,
        powerW,
        gasFlowM3PerH,
        ...(flags.fault && { faults: flags.fault, faultRate }),
      }).catch((error: unknown) => {
        stop.dispose();
        throw new EipError(
          'IO_ERROR',
          `cannot write P1 telegrams on ${flags.device}: ${(error as Error).message}`,
          { cause: error },
        );
      });
      const faults = flags.fault ? `, faults ${flags.fault.join(',')} at ${faultRate}` : '';
      io.stderr.write(
        `eip-sim: DSMR 5 P1 meter on ${flags.device} at ${flags.baud} baud, a telegram every ${intervalS} s, ${powerW} W, gas ${gasFlowM3PerH} m3/h${faults} (Ctrl-C stops)\n`,
      );
      await stop.stopped;
      await sim.close();
    });
}
