/** P1 telegrams: the CRC guards the whole block, and values come out with their units. */
import { describe, expect, it } from 'vitest';
import { isEipError } from '../../core/errors.js';
import { crc16Arc, parseP1Telegram } from '../../core/meters/p1.js';

const BODY = [
  '/ISk5\\2MT382-1000',
  '',
  '1-3:0.2.8(50)',
  '0-0:1.0.0(101209113020W)',
  '1-0:1.8.1(123456.789*kWh)',
  '1-0:1.8.2(123456.789*kWh)',
  '1-0:2.8.1(000012.345*kWh)',
  '1-0:2.8.2(000000.000*kWh)',
  '1-0:1.7.0(01.193*kW)',
  '1-0:2.7.0(00.000*kW)',
  '0-1:24.2.1(101209112500W)(12785.123*m3)',
  '!',
].join('\r\n');

function telegram(body = BODY): string {
  const crc = crc16Arc(Buffer.from(body, 'latin1')).toString(16).toUpperCase().padStart(4, '0');
  return `${body}${crc}\r\n`;
}

describe('P1 telegrams', () => {
  it('computes CRC-16/ARC as DSMR specifies (check value of "123456789" is BB3D)', () => {
    expect(crc16Arc(Buffer.from('123456789'))).toBe(0xbb3d);
  });

  it('reads electricity and gas with their units', () => {
    const parsed = parseP1Telegram(telegram());
    expect(parsed.header).toBe('ISk5\\2MT382-1000');
    expect(parsed.values).toMatchObject({
      electricity_import_t1: { value: 123456.789, unit: 'kWh' },
      electricity_export_t1: { value: 12.345, unit: 'kWh' },
      power_import: { value: 1.193, unit: 'kW' },
      gas: { value: 12785.123, unit: 'm3' },
    });
    expect(parsed.gasMeasuredAt).toBe('101209112500W');
  });

  it('refuses a telegram whose CRC fails, whole', () => {
    const damaged = telegram().replace('1.193', '9.193');
    try {
      parseP1Telegram(damaged);
      expect.unreachable();
    } catch (error) {
      expect(isEipError(error, 'INVALID_MESSAGE')).toBe(true);
      expect((error as Error).message).toMatch(
        /^P1 telegram: CRC [0-9A-F]{4} does not match the telegram's [0-9A-F]{4}$/,
      );
    }
  });

  it('refuses a truncated telegram and a bad value line', () => {
    expect(() => parseP1Telegram(BODY.slice(0, 80))).toThrow(/no "\/" \.\.\. "!" block/);
    expect(() => parseP1Telegram(`${BODY}`)).toThrow(/no CRC after "!"/);
    expect(() => parseP1Telegram(telegram(BODY.replace('(01.193*kW)', '(1,193 kW)')))).toThrow(
      /cannot read the value of line "1-0:1.7.0\(1,193 kW\)"/,
    );
  });
});
