/**
 * `eip-edge read-p1`: waits for one telegram on a smart meter's P1 port and shows its values, so an
 * installer can check the cable and the line settings before writing the config.
 */
import { EipError } from '../../core/errors.js';
import { type P1Reading, P1Source, p1Line } from '../meters/p1-reader.js';

export interface ReadP1Options {
  readonly device: string;
  readonly baudRate: number;
  readonly timeoutMs: number;
  /** Each telegram refused (a CRC failure, noise) and port failure on the way, as it happens. */
  readonly onProblem: (message: string) => void;
}

export async function readP1Once(options: ReadP1Options): Promise<P1Reading> {
  let settle: (reading: P1Reading) => void = () => undefined;
  const first = new Promise<P1Reading>((resolve) => {
    settle = resolve;
  });
  const problems: string[] = [];
  const source = new P1Source({
    path: options.device,
    ...p1Line(options.baudRate),
    onTelegram: (reading) => settle(reading),
    onError: (error) => {
      problems.push(error.message);
      options.onProblem(error.message);
    },
  });
  try {
    await source.start();
  } catch (error) {
    // A wrong device path fails at once; the source would otherwise keep trying to reopen it.
    await source.stop();
    throw error;
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const seconds = options.timeoutMs / 1000;
      const hint =
        problems.length > 0
          ? `${problems.length} refused on the way (above)`
          : options.baudRate === 115200
            ? 'nothing arrived: is the cable in and the port enabled? a DSMR 2.2/3 meter sends at --baud 9600'
            : 'nothing arrived: is the cable in and the port enabled? a DSMR 4/5 meter sends at --baud 115200';
      reject(
        new EipError(
          'IO_ERROR',
          `no valid P1 telegram on ${options.device} within ${seconds} s: ${hint}`,
        ),
      );
    }, options.timeoutMs);
  });
  try {
    return await Promise.race([first, timeout]);
  } finally {
    clearTimeout(timer);
    await source.stop();
  }
}
