/**
 * `eip-sim`: simulators of the park. The composition root: it wires flags to scenarios and output,
 * and turns every failure into one line on stderr with exit code 2 (bad usage) or 1 (anything
 * else). Set EIP_DEBUG=1 to see stack traces.
 */
import { Command, Option } from 'commander';
import { commandOutput, type Io, listenForStop, reportFailure } from '../../core/cli.js';
import { EipError } from '../../core/errors.js';
import { ROLES } from '../../core/negotiation/issues.js';
import { MAX_ROUNDS_LIMIT } from '../../core/negotiation/protocol.js';
import { getUtility, UTILITY_IDS } from '../../core/utilities.js';
import { parseLink, parseUnits } from '../../edge/cli/target.js';
import { describeLink } from '../../edge/meters/modbus-client.js';
import { loadProfile } from '../../edge/meters/profiles.js';
import { CASE_STUDY } from '../case-study.js';
import { parseCurve } from '../meters/curve.js';
import { startMeterServer } from '../meters/meter-server.js';
import { FAULTS, type Fault } from '../meters/rtu-slave.js';
import { bilateralScenario, runScenario } from '../negotiation/scenario.js';
import { addEvaluateCommand, addTrainCommand } from './market-commands.js';
import { parseCount, parsePort, parsePositive } from './numbers.js';
import { checkPlotPath, emit } from './output.js';
import { addP1Command } from './p1-command.js';
import { addParkCommand } from './park-command.js';
import { parsePsiFlag } from './psi-flag.js';

interface MeterFlags {
  readonly profile: string;
  readonly tcp?: string;
  readonly host: string;
  readonly rtu?: string;
  readonly baud: string;
  readonly units: string;
  readonly fault?: Fault[];
  readonly faultRate: string;
  readonly curve?: string;
}

interface NegotiateFlags {
  readonly seller: string;
  readonly buyer: string;
  readonly sellerQty?: string;
  readonly buyerQty?: string;
  readonly surplus?: string;
  readonly need?: string;
  readonly utility: string;
  readonly priceTick?: string;
  readonly first: 'seller' | 'buyer';
  readonly afterDeadline: 'break-off' | 'stand';
  readonly maxRounds?: string;
  readonly json?: boolean;
  readonly plot?: string;
}

function program(io: Io, fail: (code: number) => void): Command {
  const root = new Command('eip-sim')
    .description('Simulators of the eco-industrial park utility market.')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput(commandOutput(io));

  root
    .command('case-study')
    .description(
      'Run the negotiation of section 5 of Kröhling et al.: biogas between Prosumer 0 and Prosumer 1.',
    )
    .option('--json', 'print one JSON object instead of tables')
    .option('--plot <file.svg>', 'write Fig. 6 (offers on price and quantity over steps) as SVG')
    .action((flags: { json?: boolean; plot?: string }) => {
      checkPlotPath(flags.plot);
      emit(runScenario(CASE_STUDY), flags, io);
    });

  root
    .command('negotiate')
    .description(
      'Run one bilateral negotiation of price and quantity with any strategy parameters.',
    )
    .requiredOption(
      '--seller <psi>',
      "seller's price psi: ip=..,rp=..,dl=..,cr=.. (ip >= rp, dl > 0, cr > 0)",
    )
    .requiredOption('--buyer <psi>', "buyer's price psi: ip=..,rp=..,dl=..,cr=.. (ip <= rp)")
    .option(
      '--seller-qty <psi>',
      "seller's quantity psi (default: ip = rp = surplus, it does not concede)",
    )
    .option(
      '--buyer-qty <psi>',
      "buyer's quantity psi (default: from need down to 0, the price dl and cr)",
    )
    .option(
      '--surplus <units>',
      'quantity the seller has to sell (default 100, or its quantity psi bound)',
    )
    .option('--need <units>', 'quantity the buyer needs (default 150, or its quantity psi bound)')
    .addOption(
      new Option('--utility <id>', 'traded utility, for units, ticks and provider tariffs')
        .choices(UTILITY_IDS)
        .default('biogas'),
    )
    .option('--price-tick <tokens>', "smallest price step of an offer (default: the utility's)")
    .addOption(
      new Option('--first <role>', 'who makes the first offer').choices(ROLES).default('seller'),
    )
    .addOption(
      new Option('--after-deadline <mode>', 'what an agent does past its deadline')
        .choices(['break-off', 'stand'])
        .default('break-off'),
    )
    .option('--max-rounds <n>', 'hard limit on rounds (default 10000)')
    .option('--json', 'print one JSON object instead of tables')
    .option('--plot <file.svg>', 'write the offers over steps as SVG')
    .action((flags: NegotiateFlags) => {
      checkPlotPath(flags.plot);
      const scenario = bilateralScenario({
        utility: getUtility(flags.utility),
        priceTick: given(flags.priceTick, (t) => parsePositive(t, '--price-tick')),
        seller: {
          price: parsePsiFlag(flags.seller, '--seller'),
          quantity: given(flags.sellerQty, (t) => parsePsiFlag(t, '--seller-qty')),
          amount: given(flags.surplus, (t) => parsePositive(t, '--surplus')),
        },
        buyer: {
          price: parsePsiFlag(flags.buyer, '--buyer'),
          quantity: given(flags.buyerQty, (t) => parsePsiFlag(t, '--buyer-qty')),
          amount: given(flags.need, (t) => parsePositive(t, '--need')),
        },
        opener: flags.first,
        afterDeadline: flags.afterDeadline,
        maxRounds: given(flags.maxRounds, (t) => parseCount(t, '--max-rounds', MAX_ROUNDS_LIMIT)),
      });
      emit(runScenario(scenario), flags, io);
    });
  root
    .command('meter')
    .summary('serve simulated meters of a profile over Modbus TCP or RTU until stopped')
    .description(
      'Serve simulated meters of a profile until Ctrl-C: over Modbus TCP, several unit ids behind one port like an RS-485-to-TCP converter, or over Modbus RTU on a serial device. Counters (energy, gas volume, heat) grow with the simulated load, which --curve shapes over the day.',
    )
    .requiredOption('--profile <name>', 'meter profile (see eip-edge profiles)')
    .option('--tcp <port>', 'TCP port to listen on (0 picks a free one)')
    .option('--host <address>', 'address to listen on with --tcp', '127.0.0.1')
    .option('--rtu <device>', 'serial device to answer on (Modbus RTU)')
    .option('--baud <rate>', 'RTU baud rate', '9600')
    .option('--units <list>', 'unit ids that answer, e.g. 1-3,7', '1')
    .addOption(
      new Option('--fault <kind...>', 'with --rtu: inject a bus fault into answers').choices(
        FAULTS,
      ),
    )
    .option('--fault-rate <share>', 'share of answers that get the fault, 0 to 1', '1')
    .option(
      '--curve <spec>',
      "with --tcp: the load over the day (UTC), HH:MM=value,... linear between points and wrapping at midnight (e.g. 06:00=0,12:00=2300,18:00=0), or one constant; the value is the meter's rate: active power in W over all phases (electricity), gas flow in m3/h (biogas), thermal power in kW (heat)",
    )
    .action(async (flags: MeterFlags) => {
      // --tcp takes a port here (the simulator listens); the rest of the link rules are edge's.
      const link =
        flags.tcp !== undefined && flags.rtu === undefined
          ? ({ kind: 'tcp', host: flags.host, port: parsePort(flags.tcp) } as const)
          : parseLink({ tcp: flags.tcp, rtu: flags.rtu, baud: flags.baud });
      if (flags.fault && link.kind !== 'rtu') {
        throw new EipError(
          'INVALID_ARGUMENT',
          '--fault: faults are injected on RTU buses (--rtu) only',
        );
      }
      const faultRate = Number(flags.faultRate);
      if (!/^(0(\.\d+)?|1(\.0+)?)$/.test(flags.faultRate)) {
        throw new EipError(
          'INVALID_ARGUMENT',
          `--fault-rate: "${flags.faultRate}" is not a share from 0 to 1`,
        );
      }
      const options = {
        profile: loadProfile(flags.profile),
        link,
        units: parseUnits(flags.units),
        ...(flags.fault && { faults: flags.fault, faultRate }),
        ...(flags.curve !== undefined && { curve: parseCurve(flags.curve, '--curve') }),
      };
      const stop = listenForStop();
      const server = await startMeterServer(options).catch((error: unknown) => {
        stop.dispose();
        throw error;
      });
      io.stderr.write(
        `eip-sim: ${flags.profile} units ${server.units.join(',')} on ${describeLink(server.link)} (Ctrl-C stops)\n`,
      );
      await stop.stopped;
      await server.close();
    });
  addP1Command(root, io);
  addParkCommand(root, io, fail);
  addTrainCommand(root, io);
  addEvaluateCommand(root, io);
  return root;
}

/** Parses an optional flag; undefined when it was not given. */
function given<T>(text: string | undefined, parse: (text: string) => T): T | undefined {
  return text === undefined ? undefined : parse(text);
}

/** Runs the CLI and returns its exit code; never throws. */
export async function main(argv: readonly string[], io: Io = process): Promise<number> {
  try {
    let code = 0;
    await program(io, (failed) => {
      code = failed;
    }).parseAsync([...argv], { from: 'user' });
    return code;
  } catch (error) {
    return reportFailure('eip-sim', error, io, {
      message: flagMessage,
      debug: Boolean(process.env.EIP_DEBUG),
    });
  }
}

/** Engine errors name a role and issue; on the command line the user knows them as flags. */
function flagMessage(message: string, details: Readonly<Record<string, unknown>>): string {
  const { role, issue, problem } = details;
  if (typeof role !== 'string' || typeof issue !== 'string' || typeof problem !== 'string')
    return message;
  return `--${role}${issue === 'quantity' ? '-qty' : ''}: ${problem}`;
}
