/** P1 telegrams: the CRC guards the whole block, and values come out with their units. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isEipError } from '../../core/errors.js';
import {
  buildP1Telegram,
  crc16Arc,
  formatP1Time,
  type P1TelegramInput,
  parseP1Telegram,
  parseP1Time,
} from '../../core/meters/p1.js';

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

describe('P1 time stamps', () => {
  it('reads Dutch local time with its summer-time flag', () => {
    expect(parseP1Time('101209113020W')).toBe(Date.UTC(2010, 11, 9, 10, 30, 20));
    expect(parseP1Time('190830141516S')).toBe(Date.UTC(2019, 7, 30, 12, 15, 16));
    expect(() => parseP1Time('1012091130W')).toThrow(/"1012091130W" is not a time stamp/);
  });

  it('switches to summer time at 01:00 UTC on the last Sunday of March, and back in October', () => {
    expect(formatP1Time(Date.UTC(2024, 2, 31, 0, 59, 59))).toBe('240331015959W');
    expect(formatP1Time(Date.UTC(2024, 2, 31, 1, 0, 0))).toBe('240331030000S');
    // The hour from 02:00 to 03:00 local happens twice on 27 October 2024; the flag tells which.
    expect(formatP1Time(Date.UTC(2024, 9, 27, 0, 30))).toBe('241027023000S');
    expect(formatP1Time(Date.UTC(2024, 9, 27, 1, 30))).toBe('241027023000W');
  });

  it('round-trips any second of the century, across both changes of the clock', () => {
    const second = fc.integer({
      min: Date.UTC(2000, 0, 1, 1) / 1000,
      max: Date.UTC(2099, 11, 31) / 1000,
    });
    fc.assert(fc.property(second, (s) => parseP1Time(formatP1Time(s * 1000)) === s * 1000));
  });
});

const INPUT: P1TelegramInput = {
  header: 'EIP5SIM-P1',
  measuredAt: Date.UTC(2024, 5, 1, 10, 0, 0),
  equipmentId: 'E0012345678901234',
  tariff: 2,
  electricity: {
    electricity_import_t1: 1000,
    electricity_import_t2: 1234.567,
    electricity_export_t1: 0,
    electricity_export_t2: 12.3,
    power_import: 2.3,
    power_export: 0,
  },
  gas: { m3: 100.125, measuredAt: Date.UTC(2024, 5, 1, 9, 55), equipmentId: 'G0012345678901234' },
};

describe('P1 telegram builder', () => {
  it('writes a DSMR 5 telegram that the parser reads back', () => {
    const text = buildP1Telegram(INPUT);
    expect(text).toMatch(/^\/EIP5SIM-P1\r\n\r\n1-3:0\.2\.8\(50\)\r\n/);
    expect(text).toContain(
      '\r\n1-0:2.8.2(000012.300*kWh)\r\n0-0:96.14.0(0002)\r\n1-0:1.7.0(02.300*kW)',
    );
    expect(text).toContain('\r\n0-1:24.2.1(240601115500S)(00100.125*m3)\r\n!');
    expect(text).toMatch(/\r\n![0-9A-F]{4}\r\n$/);
    const parsed = parseP1Telegram(text);
    expect(parsed).toEqual({
      header: 'EIP5SIM-P1',
      values: {
        electricity_import_t1: { value: 1000, unit: 'kWh' },
        electricity_import_t2: { value: 1234.567, unit: 'kWh' },
        electricity_export_t1: { value: 0, unit: 'kWh' },
        electricity_export_t2: { value: 12.3, unit: 'kWh' },
        power_import: { value: 2.3, unit: 'kW' },
        power_export: { value: 0, unit: 'kW' },
        gas: { value: 100.125, unit: 'm3' },
      },
      measuredAt: '240601120000S',
      gasMeasuredAt: '240601115500S',
    });
  });

  it('round-trips any counters, powers and times at the precision of their formats', () => {
    const kwh = fc.integer({ min: 0, max: 999_999_999 }).map((n) => n / 1000);
    const kw = fc.integer({ min: 0, max: 99_999 }).map((n) => n / 1000);
    const second = fc.integer({
      min: Date.UTC(2000, 0, 1, 1) / 1000,
      max: Date.UTC(2099, 0, 1) / 1000,
    });
    fc.assert(
      fc.property(
        kwh,
        kwh,
        kw,
        fc.integer({ min: 0, max: 99_999_999 }),
        second,
        (t1, t2, p, gas, s) => {
          const input: P1TelegramInput = {
            ...INPUT,
            measuredAt: s * 1000,
            electricity: {
              ...INPUT.electricity,
              electricity_import_t1: t1,
              electricity_export_t2: t2,
              power_import: p,
            },
            gas: { ...(INPUT.gas as NonNullable<P1TelegramInput['gas']>), m3: gas / 1000 },
          };
          const parsed = parseP1Telegram(buildP1Telegram(input));
          return (
            parsed.values.electricity_import_t1?.value === t1 &&
            parsed.values.electricity_export_t2?.value === t2 &&
            parsed.values.power_import?.value === p &&
            parsed.values.gas?.value === gas / 1000 &&
            parseP1Time(parsed.measuredAt ?? '') === s * 1000
          );
        },
      ),
    );
  });

  it('leaves out the gas lines when there is no gas meter', () => {
    const { gas: _, ...electricityOnly } = INPUT;
    const parsed = parseP1Telegram(buildP1Telegram(electricityOnly));
    expect(parsed.values.gas).toBeUndefined();
    expect(parsed.gasMeasuredAt).toBeUndefined();
  });

  it('refuses a value its format cannot hold, naming it', () => {
    const power = (power_import: number) =>
      buildP1Telegram({ ...INPUT, electricity: { ...INPUT.electricity, power_import } });
    expect(() => power(100)).toThrow(/power_import 100 does not fit 2 digits before the point/);
    expect(() => power(-1)).toThrow(/power_import -1 does not fit/);
  });

  it('marks a CRC failure apart from a malformed telegram', () => {
    const reason = (text: string) => {
      try {
        parseP1Telegram(text);
        return 'accepted';
      } catch (error) {
        return isEipError(error) ? error.details.fault : error;
      }
    };
    expect(reason(buildP1Telegram(INPUT).replace('02.300', '02.301'))).toBe('crc');
    expect(reason(buildP1Telegram(INPUT).replace(/![0-9A-F]{4}/, '!'))).toBe('format');
  });
});

describe('DSMR 2.2/3 telegrams (no CRC, gas on two lines)', () => {
  // As a Kaifa MA105 (DSMR 3.0) sends it at 9600 baud 7E1.
  const dsmr3 = (when: string) =>
    [
      '/KFM5KAIFA-METER',
      '',
      '0-0:96.1.1(4530303033303030303030303030303030)',
      '1-0:1.8.1(000123.456*kWh)',
      '1-0:1.8.2(000234.567*kWh)',
      '1-0:2.8.1(000000.000*kWh)',
      '1-0:2.8.2(000001.000*kWh)',
      '0-0:96.14.0(0002)',
      '1-0:1.7.0(0001.19*kW)',
      '1-0:2.7.0(0000.00*kW)',
      '0-1:96.1.0(3238303131303038333131373338383133)',
      `0-1:24.3.0(${when})(00)(60)(1)(0-1:24.2.1)(m3)`,
      '(00987.654)',
      '!',
      '',
    ].join('\r\n');

  it('reads electricity and the two-line gas reading when the line is set up for them', () => {
    const parsed = parseP1Telegram(dsmr3('240601110000'), { withoutCrc: true });
    expect(parsed.header).toBe('KFM5KAIFA-METER');
    expect(parsed.values).toMatchObject({
      electricity_import_t1: { value: 123.456, unit: 'kWh' },
      electricity_import_t2: { value: 234.567, unit: 'kWh' },
      power_import: { value: 1.19, unit: 'kW' },
      gas: { value: 987.654, unit: 'm3' },
    });
    // No S/W flag: summer time is inferred, so 11:00 on 1 June is 09:00 UTC.
    expect(parseP1Time(parsed.gasMeasuredAt as string)).toBe(Date.UTC(2024, 5, 1, 9));
    expect(
      parseP1Time(
        parseP1Telegram(dsmr3('240115110000'), { withoutCrc: true }).gasMeasuredAt as string,
      ),
    ).toBe(Date.UTC(2024, 0, 15, 10));
    // The hour that repeats when summer time ends (27 October 2024, 02:00-03:00) reads as winter.
    expect(
      parseP1Time(
        parseP1Telegram(dsmr3('241027023000'), { withoutCrc: true }).gasMeasuredAt as string,
      ),
    ).toBe(Date.UTC(2024, 9, 27, 1, 30));
  });

  it('still refuses a telegram without a CRC from a DSMR 4/5 line', () => {
    expect(() => parseP1Telegram(dsmr3('240601110000'))).toThrow(/no CRC after "!"/);
  });

  it('still checks a CRC that is there, and names a missing gas value', () => {
    const withCrc = `${dsmr3('240601110000').replace(/!\r\n$/, '!')}ABCD\r\n`;
    expect(() => parseP1Telegram(withCrc, { withoutCrc: true })).toThrow(/CRC .* does not match/);
    const noValue = dsmr3('240601110000').replace('(00987.654)\r\n', '');
    expect(() => parseP1Telegram(noValue, { withoutCrc: true })).toThrow(
      /no gas value on the line after "0-1:24\.3\.0/,
    );
  });
});
