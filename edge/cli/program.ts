/**
 * `eip-edge`: the edge agent's command line. For now the installer's tools: `read` one meter with
 * a profile, `scan` a bus for unit ids, `profiles` to list the supported meters. A thin
 * composition root; failures are one line (core/cli.ts).
 */
import { Command } from 'commander';
import { commandOutput, type Io, reportFailure } from '../../core/cli.js';
import { textTable } from '../../core/text-table.js';
import { describeLink, ModbusReader } from '../meters/modbus-client.js';
import { loadProfile, profileNames } from '../meters/profiles.js';
import { readProfile } from '../meters/reader.js';
import { scanUnits } from '../meters/scan.js';
import { parseLink, parseMilliseconds, parseUnit, parseUnits } from './target.js';

interface LinkFlags {
  readonly tcp?: string;
  readonly rtu?: string;
  readonly baud: string;
}

interface ReadFlags extends LinkFlags {
  readonly profile: string;
  readonly unit: string;
  readonly timeout: string;
  readonly json?: boolean;
}

interface ScanFlags extends LinkFlags {
  readonly units: string;
  readonly timeout: string;
}

function program(io: Io): Command {
  const root = new Command('eip-edge')
    .description('Edge agent of the eco-industrial park utility market.')
    .exitOverride()
    .configureOutput(commandOutput(io));

  root
    .command('read')
    .summary("read every quantity of a meter's profile once")
    .description(
      "Read every quantity of a meter's profile once, to check the wiring and the profile. Values are in the profile's units.",
    )
    .requiredOption('--profile <name>', 'meter profile (see eip-edge profiles)')
    .option('--tcp <host:port>', 'Modbus TCP address of the meter or RS-485 converter')
    .option('--rtu <device>', 'serial device of the RS-485 adapter (Modbus RTU)')
    .option('--baud <rate>', 'RTU baud rate', '9600')
    .option('--unit <id>', 'Modbus unit id', '1')
    .option('--timeout <ms>', 'per request', '1000')
    .option('--json', 'print {"quantity": value, ...}')
    .action(async (flags: ReadFlags) => {
      const profile = loadProfile(flags.profile);
      const target = {
        link: parseLink(flags),
        unit: parseUnit(flags.unit),
        timeoutMs: parseMilliseconds(flags.timeout, '--timeout'),
      };
      const reader = await ModbusReader.connect(target);
      try {
        const readings = await readProfile(reader, profile);
        if (flags.json) {
          const values = Object.fromEntries(readings.map((r) => [r.quantity.name, r.value]));
          io.stdout.write(`${JSON.stringify(values, null, 2)}\n`);
          return;
        }
        io.stdout.write(
          `${profile.manufacturer} ${profile.model}, unit ${target.unit} at ${describeLink(target.link)}\n\n`,
        );
        io.stdout.write(
          `${textTable(
            ['quantity', 'value', 'unit'],
            readings.map((r) => [r.quantity.name, formatValue(r.value), r.quantity.unit]),
            ['left', 'right', 'left'],
          )}\n`,
        );
      } finally {
        await reader.close();
      }
    });

  root
    .command('scan')
    .summary('list the unit ids that answer on a bus or at a converter')
    .option('--tcp <host:port>', 'Modbus TCP address of the RS-485 converter or meter')
    .option('--rtu <device>', 'serial device of the RS-485 adapter (Modbus RTU)')
    .option('--baud <rate>', 'RTU baud rate', '9600')
    .option('--units <list>', 'unit ids to try, e.g. 1-10,17', '1-247')
    .option('--timeout <ms>', 'per unit id', '300')
    .action(async (flags: ScanFlags) => {
      const found = await scanUnits({
        link: parseLink(flags),
        units: parseUnits(flags.units),
        timeoutMs: parseMilliseconds(flags.timeout, '--timeout'),
        onProgress: (unit, total) => {
          if (unit % 16 === 0) io.stderr.write(`  tried ${unit} of ${total}\n`);
        },
      });
      io.stdout.write(found.length ? `${found.join('\n')}\n` : '');
      io.stderr.write(`${found.length} unit id(s) answered\n`);
    });

  root
    .command('profiles')
    .summary('list the meter profiles shipped in hardware/meters')
    .action(() => {
      io.stdout.write(
        `${textTable(
          ['profile', 'meter', 'utility', 'quantities'],
          profileNames().map((name) => {
            const profile = loadProfile(name);
            return [
              name,
              `${profile.manufacturer} ${profile.model}`,
              profile.utility,
              String(Object.keys(profile.quantities).length),
            ];
          }),
          ['left', 'left', 'left', 'right'],
        )}\n`,
      );
    });
  return root;
}

/** Enough digits for a meter display, without float noise (230.10000610351562). */
function formatValue(value: number): string {
  return Number(value.toPrecision(7)).toString();
}

/** Runs the CLI and returns its exit code; never throws. */
export async function main(argv: readonly string[], io: Io = process): Promise<number> {
  try {
    await program(io).parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    return reportFailure('eip-edge', error, io, { debug: Boolean(process.env.EIP_DEBUG) });
  }
}
