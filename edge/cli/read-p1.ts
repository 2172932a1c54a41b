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
  let refused = 0;
  const source = new P1Source({
    path: options.device,
    ...p1Line(options.baudRate),
    onTelegram: (reading) => settle(reading),
    onError: (error) => {
      refused++;
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
      const [other, otherBaud] =
        options.baudRate === 115200 ? ['DSMR 2.2/3', 9600] : ['DSMR 4/5', 115200];
      const hint =
        refused > 0
          ? `${refused} refused on the way (above)`
          : `nothing arrived: is the cable in and the port enabled? a ${other} meter sends at --baud ${otherBaud}`;
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
