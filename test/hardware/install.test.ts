/**
 * The installer's kit in hardware/: install.sh staged into a temporary root (--root), the unit
 * file, the udev rule templates, and the install guides checked against the real eip-edge
 * command line, so the docs never name a subcommand or flag that does not exist.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../edge/cli/program.js';
import { capture } from '../support/capture.js';

const REPO = join(import.meta.dirname, '..', '..');
const HARDWARE = join(REPO, 'hardware');
const SCRIPT = join(HARDWARE, 'install.sh');
const SHIPPED_UNIT = join(HARDWARE, 'systemd', 'eip-edge.service');
const SHIPPED_UDEV = join(HARDWARE, 'udev', '99-eip-rs485.rules');

function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

let work: string;
/** A copy of the package as npm would unpack it: hardware/, package.json, the example config. */
let pkg: string;
/** A fake eip-edge: with --root the installer only needs its absolute path. */
let fakeBin: string;
let exampleConfig: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'eip-install-'));
  pkg = join(work, 'pkg');
  mkdirSync(join(pkg, 'edge', 'config'), { recursive: true });
  for (const part of ['install.sh', 'systemd', 'udev'])
    cpSync(join(HARDWARE, part), join(pkg, 'hardware', part), { recursive: true });
  copyFileSync(join(REPO, 'package.json'), join(pkg, 'package.json'));
  // The example config is written alongside the agent; until it exists, a stand-in.
  const realExample = join(REPO, 'edge', 'config', 'example.yaml');
  exampleConfig = existsSync(realExample)
    ? readFileSync(realExample, 'utf8')
    : '# stand-in example config\nmeters: []\n';
  writeFileSync(join(pkg, 'edge', 'config', 'example.yaml'), exampleConfig);
  mkdirSync(join(work, 'bin'));
  fakeBin = join(work, 'bin', 'eip-edge');
  writeFileSync(fakeBin, '#!/bin/sh\nexit 0\n');
  chmodSync(fakeBin, 0o755);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs the packaged install.sh with eip-edge (and maybe another node) first on PATH. */
function install(args: string[], pathFirst: string[] = []) {
  const result = spawnSync('sh', [join(pkg, 'hardware', 'install.sh'), ...args], {
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: [...pathFirst, join(work, 'bin'), process.env.PATH ?? ''].join(':'),
      EIP_PACKAGE: '',
      EIP_EDGE_BIN: '',
    },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

describe('hardware/install.sh', () => {
  it('is valid POSIX sh', () => {
    const result = spawnSync('sh', ['-n', SCRIPT], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  // shellcheck is optional on a developer's machine; this one check skips without it.
  it.skipIf(!has('shellcheck'))('passes shellcheck as sh', () => {
    const result = spawnSync('shellcheck', ['-s', 'sh', SCRIPT], { encoding: 'utf8' });
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });

  it('stages an install under --root: unit with the absolute path, config, udev rules', () => {
    const root = join(work, 'root-1');
    const { code, stdout, stderr } = install(['--root', root]);
    expect(code, stderr).toBe(0);

    const unit = readFileSync(join(root, 'etc/systemd/system/eip-edge.service'), 'utf8');
    expect(unit).toContain(`\nExecStart=${fakeBin} run --config /etc/eip-edge/config.yaml\n`);
    expect(unit).toContain(`\nExecStartPre=${fakeBin} check-config /etc/eip-edge/config.yaml\n`);
    expect(unit).not.toContain('/usr/bin/eip-edge ');
    expect(unit).not.toContain('Environment=PATH='); // /usr/bin/node is on systemd's PATH
    expect(mode(join(root, 'etc/systemd/system/eip-edge.service'))).toBe(0o644);

    expect(readFileSync(join(root, 'etc/eip-edge/config.yaml'), 'utf8')).toBe(exampleConfig);
    expect(mode(join(root, 'etc/eip-edge/config.yaml'))).toBe(0o640);
    expect(mode(join(root, 'etc/eip-edge'))).toBe(0o750);
    expect(mode(join(root, 'var/lib/eip-edge'))).toBe(0o750);

    const rules = join(root, 'etc/udev/rules.d/99-eip-rs485.rules');
    expect(readFileSync(rules, 'utf8')).toBe(readFileSync(SHIPPED_UDEV, 'utf8'));

    // Nothing on the system itself: every system command is printed, none is run.
    expect(stdout).toContain('would run: npm install -g --omit=dev eip-market\n');
    expect(stdout).toMatch(/would run: useradd --system .*--groups dialout .* eip-edge\n/);
    expect(stdout).toContain('would run: systemctl daemon-reload\n');
    expect(stdout).toContain('would run: udevadm control --reload-rules\n');
    expect(stdout).toContain('would run: udevadm trigger --subsystem-match=tty\n');
    expect(stdout).toContain('would run: systemctl enable eip-edge.service\n');
    expect(stdout).not.toMatch(/systemctl (re)?start/);
  });

  it('never overwrites the config or edited udev rules on a second run', () => {
    const root = join(work, 'root-2');
    expect(install(['--root', root]).code).toBe(0);
    const config = join(root, 'etc/eip-edge/config.yaml');
    const rules = join(root, 'etc/udev/rules.d/99-eip-rs485.rules');
    writeFileSync(config, 'edited: by the installer\n');
    writeFileSync(rules, `${readFileSync(rules, 'utf8')}# edited\n`);

    const again = install(['--root', root, '--no-start']);
    expect(again.code, again.stderr).toBe(0);
    expect(readFileSync(config, 'utf8')).toBe('edited: by the installer\n');
    expect(readFileSync(rules, 'utf8')).toMatch(/# edited\n$/);
    expect(again.stdout).toContain('kept the existing file');
    expect(again.stdout).toContain('kept your edited file');
    // The unit is the installer's own: rewritten, still right.
    expect(readFileSync(join(root, 'etc/systemd/system/eip-edge.service'), 'utf8')).toContain(
      `\nExecStart=${fakeBin} run --config /etc/eip-edge/config.yaml\n`,
    );
  });

  it("adds node's directory to the unit's PATH when systemd would not find node", () => {
    const nodeDir = join(work, 'node-bin');
    mkdirSync(nodeDir, { recursive: true });
    writeFileSync(join(nodeDir, 'node'), `#!/bin/sh\nexec '${process.execPath}' "$@"\n`);
    chmodSync(join(nodeDir, 'node'), 0o755);
    const root = join(work, 'root-3');
    const { code, stderr } = install(['--root', root], [nodeDir]);
    expect(code, stderr).toBe(0);
    const unit = readFileSync(join(root, 'etc/systemd/system/eip-edge.service'), 'utf8');
    expect(unit).toContain(
      `\nEnvironment=PATH=${nodeDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n`,
    );
  });

  it('stops before touching anything when node is older than 20.19', () => {
    const oldNode = join(work, 'old-node');
    mkdirSync(oldNode, { recursive: true });
    writeFileSync(join(oldNode, 'node'), '#!/bin/sh\necho v18.19.0\n');
    chmodSync(join(oldNode, 'node'), 0o755);
    const root = join(work, 'root-4');
    const { code, stderr } = install(['--root', root], [oldNode]);
    expect(code).toBe(1);
    expect(stderr).toContain('node v18.19.0');
    expect(stderr).toContain('20.19 or later');
    expect(stderr).toContain('hardware/raspberry-pi.md');
    expect(readdirSync(root)).toEqual([]);
  });

  it('says what is wrong with its arguments and exits 2', () => {
    const unknown = install(['--frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      'install.sh: unknown option --frobnicate (see sh install.sh --help)\n',
    );
    expect(install(['--root']).code).toBe(2);
    expect(install(['--root', '/']).code).toBe(2);
    const help = install(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--root DIR/);
    expect(help.stdout).toMatch(/--no-start/);
  });
});

type Unit = Map<string, Map<string, string[]>>;

/** A unit file as sections of keys, each with every value it is given (DeviceAllow= repeats). */
function parseUnit(text: string): Unit {
  const sections: Unit = new Map();
  let current: Map<string, string[]> | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header?.[1]) {
      current = new Map();
      sections.set(header[1], current);
      return;
    }
    const pair = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!pair?.[1] || pair[2] === undefined || !current)
      throw new Error(`line ${index + 1} is not Key=value inside a [Section]: ${raw}`);
    current.set(pair[1], [...(current.get(pair[1]) ?? []), pair[2]]);
  });
  return sections;
}

describe('hardware/systemd/eip-edge.service', () => {
  const unit = parseUnit(readFileSync(SHIPPED_UNIT, 'utf8'));
  const value = (section: string, key: string) => unit.get(section)?.get(key) ?? [];

  it('parses as an INI file with [Unit], [Service] and [Install]', () => {
    expect([...unit.keys()]).toEqual(['Unit', 'Service', 'Install']);
  });

  it('runs check-config, then the agent, as eip-edge with the keystore password credential', () => {
    expect(value('Service', 'ExecStartPre')).toEqual([
      '/usr/bin/eip-edge check-config /etc/eip-edge/config.yaml',
    ]);
    expect(value('Service', 'ExecStart')).toEqual([
      '/usr/bin/eip-edge run --config /etc/eip-edge/config.yaml',
    ]);
    expect(value('Service', 'User')).toEqual(['eip-edge']);
    expect(value('Service', 'Group')).toEqual(['eip-edge']);
    expect(value('Service', 'SupplementaryGroups')).toEqual(['dialout']);
    expect(value('Service', 'StateDirectory')).toEqual(['eip-edge']);
    expect(value('Service', 'ConfigurationDirectory')).toEqual(['eip-edge']);
    expect(value('Service', 'LoadCredential')).toEqual([
      'keystore-password:/etc/eip-edge/keystore-password',
    ]);
    expect(value('Service', 'Environment')).toContain('NODE_ENV=production');
    expect(value('Service', 'EnvironmentFile')).toEqual(['-/etc/eip-edge/env']);
  });

  it('restarts on failure after the network is up, and is wanted at boot', () => {
    expect(value('Unit', 'Wants')).toEqual(['network-online.target']);
    expect(value('Unit', 'After')[0]).toMatch(/\bnetwork-online\.target\b/);
    expect(value('Service', 'Restart')).toEqual(['on-failure']);
    expect(value('Service', 'RestartSec')).toEqual(['10s']);
    expect(value('Install', 'WantedBy')).toEqual(['multi-user.target']);
  });

  it('is sandboxed, with the serial ports as the only devices', () => {
    for (const [key, expected] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['PrivateDevices', 'no'],
      ['DevicePolicy', 'closed'],
      ['MemoryMax', '256M'],
    ] as const)
      expect(value('Service', key), key).toEqual([expected]);
    expect(value('Service', 'DeviceAllow')).toEqual(
      expect.arrayContaining(['char-ttyUSB rw', 'char-ttyAMA rw']),
    );
    // V8's JIT needs writable and executable memory.
    expect(value('Service', 'MemoryDenyWriteExecute')).toEqual([]);
  });

  it.skipIf(!has('systemd-analyze'))('passes systemd-analyze verify once installed', () => {
    const root = join(work, 'root-verify');
    expect(install(['--root', root]).code).toBe(0);
    const result = spawnSync(
      'systemd-analyze',
      ['verify', join(root, 'etc/systemd/system/eip-edge.service')],
      { encoding: 'utf8' },
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});

describe('hardware/udev/99-eip-rs485.rules', () => {
  const text = readFileSync(SHIPPED_UDEV, 'utf8');
  const templates = text
    .split('\n')
    .filter((line) => line.startsWith('#SUBSYSTEM=='))
    .map((line) => line.slice(1));

  it('ships every rule commented out, to be filled in per adapter', () => {
    const active = text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
    expect(active).toEqual([]);
    expect(templates.length).toBeGreaterThanOrEqual(4);
  });

  it('has templates in udev syntax naming /dev/eip-rs485-N (or eip-p1-N), group dialout, 0660', () => {
    const pair = /^[A-Z]+(\{[A-Za-z_]+\})?(==|!=|\+=|=)"[^"]*"$/;
    for (const rule of templates) {
      for (const part of rule.split(', ')) expect(part, rule).toMatch(pair);
      expect(rule).toMatch(/, SYMLINK\+="eip-(rs485|p1)-\d+"/);
      expect(rule).toMatch(/, GROUP="dialout", MODE="0660"$/);
    }
  });
});

// --- The docs name only commands and flags the CLI has ------------------------------------

/**
 * Subcommands being written alongside these docs. Their help is checked once `eip-edge --help`
 * lists them; until then mentions of them are skipped (and only them).
 */
const BEING_WRITTEN = new Set(['run', 'check-config', 'keystore']);

interface Mention {
  readonly where: string;
  readonly command: readonly string[];
  readonly flags: readonly string[];
}

/** The code in a Markdown file: fenced blocks line by line, and inline `code` spans. */
function codeIn(markdown: string): string[] {
  const code: string[] = [];
  const prose: string[] = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    else if (fenced) code.push(line);
    else prose.push(line);
  }
  // A code span may wrap onto the next line.
  for (const span of prose.join(' ').matchAll(/`([^`]+)`/g)) code.push(span[1] ?? '');
  return code;
}

/**
 * Every `eip-edge SUBCOMMAND [SUBCOMMAND] ...flags` in a line of code. `journalctl -u eip-edge`
 * and paths like /etc/eip-edge/ name no subcommand, so they are not mentions.
 */
function mentionsIn(codeLine: string, where: string): Mention[] {
  const mentions: Mention[] = [];
  const line = codeLine.replace(/\s#.*$/, ''); // a shell comment is prose
  for (const match of line.matchAll(/(?:^|[\s/("'])eip-edge(?=\s|$)/g)) {
    const rest = line.slice((match.index ?? 0) + match[0].length).split(/\||&&|;|\)|'|"|\s#/)[0];
    const tokens = (rest ?? '').trim().split(/\s+/);
    const command: string[] = [];
    for (const token of tokens) {
      if (command.length === 2 || !/^[a-z][a-z-]*$/.test(token)) break;
      command.push(token);
    }
    if (command.length === 0) continue;
    const flags = [...(rest ?? '').matchAll(/(?:^|[\s[])(--[a-z][a-z0-9-]*)/g)].map(
      (flag) => flag[1] ?? '',
    );
    mentions.push({ where, command, flags });
  }
  return mentions;
}

function allMentions(): Mention[] {
  const mentions: Mention[] = [];
  for (const file of readdirSync(HARDWARE).filter((name) => name.endsWith('.md')))
    for (const line of codeIn(readFileSync(join(HARDWARE, file), 'utf8')))
      mentions.push(...mentionsIn(line, `hardware/${file}: ${line.trim()}`));
  // The unit's command lines, not its comments.
  for (const line of readFileSync(SHIPPED_UNIT, 'utf8').split('\n'))
    if (line.startsWith('Exec')) mentions.push(...mentionsIn(line, `eip-edge.service: ${line}`));
  return mentions;
}

/** `eip-edge ...argv --help`, in-process: the subcommands and the long flags it lists. */
async function help(argv: readonly string[]): Promise<{ commands: string[]; flags: string[] }> {
  const { code, stdout } = await capture((io) => main([...argv, '--help'], io));
  expect(code, `eip-edge ${argv.join(' ')} --help`).toBe(0);
  const section = (title: string) => {
    const start = stdout.indexOf(`\n${title}:\n`);
    if (start < 0) return [];
    const body = stdout.slice(start + title.length + 3).split('\n\n')[0] ?? '';
    return body.split('\n');
  };
  return {
    commands: section('Commands').flatMap((line) => /^ {2}([a-z][a-z-]*)/.exec(line)?.[1] ?? []),
    flags: section('Options').flatMap((line) =>
      [...line.matchAll(/--[a-z][a-z0-9-]*/g)].map((m) => m[0]),
    ),
  };
}

describe('the install guides and the unit name only real eip-edge commands and flags', () => {
  const mentions = allMentions();

  it('finds the commands the guides teach', () => {
    const named = new Set(mentions.map((m) => m.command.join(' ')));
    for (const command of ['read', 'scan', 'profiles', 'check-config', 'run', 'keystore new'])
      expect(named, command).toContain(command);
  });

  it('every subcommand and flag exists in eip-edge --help', async () => {
    const root = await help([]);
    const problems: string[] = [];
    for (const mention of mentions) {
      const [first, second] = mention.command;
      if (first === undefined) continue;
      if (!root.commands.includes(first)) {
        // Being written now: checked as soon as `eip-edge --help` lists it.
        if (!BEING_WRITTEN.has(first)) problems.push(`${mention.where}: no subcommand "${first}"`);
        continue;
      }
      const command = [first];
      if (second !== undefined) {
        if (!(await help(command)).commands.includes(second)) {
          problems.push(`${mention.where}: "eip-edge ${first}" has no subcommand "${second}"`);
          continue;
        }
        command.push(second);
      }
      const { flags } = await help(command);
      for (const flag of mention.flags)
        if (!flags.includes(flag))
          problems.push(`${mention.where}: "eip-edge ${command.join(' ')}" has no flag ${flag}`);
    }
    expect(problems).toEqual([]);
  });
});
