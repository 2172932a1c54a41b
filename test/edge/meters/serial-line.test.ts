import { describe, expect, it } from 'vitest';
import { FRAMINGS, serialFraming } from '../../../edge/meters/serial-line.js';

describe('serialFraming', () => {
  it('turns what a manual says into SerialPort settings', () => {
    expect(FRAMINGS.map(serialFraming)).toEqual([
      { dataBits: 8, parity: 'none', stopBits: 1 },
      { dataBits: 8, parity: 'even', stopBits: 1 },
      { dataBits: 8, parity: 'odd', stopBits: 1 },
      { dataBits: 8, parity: 'none', stopBits: 2 },
    ]);
  });
});
