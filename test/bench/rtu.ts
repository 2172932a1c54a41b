/**
 * Modbus RTU polling throughput: the SDM630 profile read over and over through a pseudo-terminal
 * pair, with the simulated meter answering at the timing of a 9600-baud bus. The ceiling is the
 * bus itself: per request, the 8-byte request, the 3.5-character silence, the answer and another
 * silence, at 10 bits per character. The ratio is measured against that ceiling for the same
 * frames, so it shows what the edge's own overhead costs.
 */
import { planReads } from '../../core/meters/plan.js';
import { quantities } from '../../core/meters/profile.js';
import { textTable } from '../../core/text-table.js';
import { ModbusReader } from '../../edge/meters/modbus-client.js';
import { loadProfile } from '../../edge/meters/profiles.js';
import { readProfile } from '../../edge/meters/reader.js';
import { startMeterServer } from '../../simulators/meters/meter-server.js';
import { charTime } from '../../simulators/meters/rtu-slave.js';
import { openPtyPair } from '../support/pty-pair.js';

const BAUD = 9600;
const SECONDS = 10;

export async function rtuTable(): Promise<string> {
  const profile = loadProfile('eastron-sdm630');
  const requests = planReads(
    quantities(profile),
    profile.max_registers_per_request,
    profile.max_gap_registers,
  );
  const charsPerRead = requests.reduce((sum, r) => sum + 8 + 3.5 + (5 + 2 * r.count) + 3.5, 0);
  const ceiling = 1 / (charsPerRead * charTime(BAUD));

  const pty = await openPtyPair();
  const server = await startMeterServer({
    profile,
    link: { kind: 'rtu', path: pty.a, baudRate: BAUD },
  });
  const reader = await ModbusReader.connect({
    link: { kind: 'rtu', path: pty.b, baudRate: BAUD },
    unit: 1,
  });
  try {
    await readProfile(reader, profile); // warm up
    let reads = 0;
    const start = performance.now();
    while (performance.now() - start < SECONDS * 1000) {
      await readProfile(reader, profile);
      reads++;
    }
    const perSecond = (reads * 1000) / (performance.now() - start);
    return textTable(
      ['benchmark', 'reads/s', 'bus ceiling', 'of ceiling', 'goal'],
      [
        [
          `SDM630 profile (${requests.length} requests, ${Object.keys(profile.quantities).length} quantities), RTU ${BAUD} baud`,
          perSecond.toFixed(2),
          ceiling.toFixed(2),
          `${((perSecond / ceiling) * 100).toFixed(2)}%`,
          '>= 85%',
        ],
      ],
      ['left', 'right', 'right', 'right', 'right'],
    );
  } finally {
    await reader.close();
    await server.close();
    await pty.close();
  }
}
