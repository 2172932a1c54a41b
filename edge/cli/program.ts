/**
 * `eip-edge`: the edge agent's command line: `run` the agent, `check-config`, `keystore new`, and
 * the installer's tools: `read` one meter with a profile, `scan` a bus for unit ids, `profiles`
 * to list the supported meters. A thin composition root; failures are one line (core/cli.ts).
 */
import { Command, Option } from 'commander';
import { commandOutput, type Io, reportFailure } from '../../core/cli.js';
import { EipError } from '../../core/errors.js';
import { textTable } from '../../core/text-table.js';
import { loadConfig } from '../config/load.js';
import { createKeystore, keystorePassword, PASSWORD_ENV } from '../identity.js';
import { describeLink, ModbusReader } from '../meters/modbus-client.js';
import { loadProfile, profileNames } from '../meters/profiles.js';
import { readProfile } from '../meters/reader.js';
import { scanUnits } from '../meters/scan.js';
import { readP1Once } from './read-p1.js';
import { runAgent } from './run.js';
import { parseLink, parseMilliseconds, parseUnit, parseUnits } from './target.js';

interface LinkFlags {
  readonly tcp?: string;
  readonly rtu?: string;
  readonly baud: string;
  readonly framing: string;
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

/** The flags that name a Modbus link, as `read` and `scan` take them (see target.ts). */
function withLink(command: Command): Command {
  return command
    .option('--tcp <host:port>', 'Modbus TCP address of the meter or RS-485-to-TCP converter')
    .option('--rtu <device>', 'serial device of the RS-485 adapter (Modbus RTU)')
    .option('--baud <rate>', 'RTU baud rate', '9600')
    .option('--framing <bits>', 'RTU data bits, parity, stop bits: 8N1, 8E1, 8O1 or 8N2', '8N1');
}

function program(io: Io): Command {
  const root = new Command('eip-edge')
    .description('Edge agent of the eco-industrial park utility market.')
    .exitOverride()
    .configureOutput(commandOutput(io));

  withLink(root.command('read'))
    .summary("read every quantity of a meter's profile once")
    .description(
      "Read every quantity of a meter's profile once, to check the wiring and the profile. Values are in the profile's units.",
    )
    .requiredOption('--profile <name>', 'meter profile (see eip-edge profiles)')
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
    .command('read-p1')
    .summary("show one telegram from a smart meter's P1 port")
    .description(
      "Wait for one CRC-checked telegram on a smart meter's P1 port (DSMR) and show its values, to check the cable and the line settings.",
    )
    .requiredOption('--device <path>', 'serial device of the P1 cable, e.g. /dev/ttyUSB0')
    .addOption(
      new Option('--baud <rate>', '115200 for DSMR 4/5 (8N1), 9600 for DSMR 2.2/3 (7E1)')
        .choices(['115200', '9600'])
        .default('115200'),
    )
    .option('--timeout <ms>', 'how long to wait for a telegram (DSMR 2-4 send every 10 s)', '15000')
    .option('--json', 'print {"name": value, ...}')
    .action(async (flags: { device: string; baud: string; timeout: string; json?: boolean }) => {
      const reading = await readP1Once({
        device: flags.device,
        baudRate: Number(flags.baud),
        timeoutMs: parseMilliseconds(flags.timeout, '--timeout'),
        onProblem: (message) => io.stderr.write(`eip-edge: ${message}\n`),
      });
      const entries = Object.entries(reading.values);
      if (flags.json) {
        const values = Object.fromEntries(entries.map(([name, v]) => [name, v.value]));
        io.stdout.write(`${JSON.stringify(values, null, 2)}\n`);
        return;
      }
      io.stdout.write(
        `P1 meter ${reading.header} on ${flags.device}, ${new Date(reading.measuredAt).toISOString()}\n\n`,
      );
      io.stdout.write(
        `${textTable(
          ['name', 'value', 'unit'],
          entries.map(([name, v]) => [name, formatValue(v.value), v.unit]),
          ['left', 'right', 'left'],
        )}\n`,
      );
    });

  withLink(root.command('scan'))
    .summary('list the unit ids that answer on a bus or at a converter')
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
    .command('run')
    .summary('run the edge agent')
    .description(
      'Run the edge agent: read the meters, keep the balances, negotiate, and send readings and agreements to the gateway. Stops on SIGINT or SIGTERM.',
    )
    .requiredOption('--config <file>', 'agent config (YAML; see edge/config/example.yaml)')
    .action(async (flags: { config: string }) => {
      await runAgent(flags.config, io);
    });

  root
    .command('check-config')
    .summary('check an agent config and list every problem')
    .argument('<file>', 'agent config (YAML)')
    .action((file: string) => {
      const { config } = loadConfig(file);
      const meters = Object.keys(config.meters).length;
      const utilities = Object.keys(config.utilities).join(', ') || 'none';
      io.stdout.write(
        `${file}: OK: prosumer ${config.prosumer}, ${meters} meter(s), trading ${utilities}\n`,
      );
    });

  const keystore = root.command('keystore').summary('manage the prosumer key');
  keystore
    .command('new')
    .summary('create an encrypted keystore with a new key and print its address')
    .description(
      `Create a new Ethereum key, write it encrypted to --out (mode 0600) and print its address, to register with the park operator. The password comes from $${PASSWORD_ENV}.`,
    )
    .requiredOption('--out <file>', 'where to write the keystore, e.g. /etc/eip-edge/keystore.json')
    .option('--force', 'overwrite an existing file')
    .action(async (flags: { out: string; force?: boolean }) => {
      const password = keystorePassword();
      if (password === undefined) {
        throw new EipError('INVALID_ARGUMENT', `set the keystore password in $${PASSWORD_ENV}`);
      }
      const address = await createKeystore(flags.out, password, { force: flags.force === true });
      io.stdout.write(`${address}\n`);
      io.stderr.write(`keystore written to ${flags.out}; register ${address} with the park\n`);
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
