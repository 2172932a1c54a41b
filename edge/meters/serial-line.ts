/** How an RS-485 line is set up, as meter manuals give it: speed and character framing. */

/** Baud rates RS-485 meters offer. */
export const BAUD_RATES = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] as const;

/** Data bits, parity (None/Even/Odd) and stop bits, written as manuals write them. */
export const FRAMINGS = ['8N1', '8E1', '8O1', '8N2'] as const;
export type Framing = (typeof FRAMINGS)[number];

const PARITY = { N: 'none', E: 'even', O: 'odd' } as const;

/** SerialPort's settings for a framing. */
export function serialFraming(framing: Framing) {
  return {
    dataBits: 8 as const,
    parity: PARITY[framing[1] as keyof typeof PARITY],
    stopBits: framing[2] === '2' ? (2 as const) : (1 as const),
  };
}
