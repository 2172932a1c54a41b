/**
 * Compiles contracts/src with the npm `solc` package (no compiler download) into
 * contracts/artifacts/<Contract>.json (ABI, bytecode, compiler settings) and generates typed ethers
 * v6 bindings with factories in contracts/types. Fails on any compiler error, and on any warning in
 * our own sources. Part of `npm run build`.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { glob, runTypeChain } from 'typechain';

const require = createRequire(import.meta.url);
const solc = require('solc') as {
  version(): string;
  compile(
    input: string,
    callbacks: { import(path: string): { contents: string } | { error: string } },
  ): string;
};

const contractsDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(contractsDir);
const sourceDir = join(contractsDir, 'src');
const artifactsDir = join(contractsDir, 'artifacts');
const typesDir = join(contractsDir, 'types');

/** Must match contracts/foundry.toml, so forge tests and deployed bytecode are the same code. */
export const COMPILER_SETTINGS = {
  evmVersion: 'cancun',
  optimizer: { enabled: true, runs: 10_000 },
} as const;

interface SolcMessage {
  severity: 'error' | 'warning' | 'info';
  formattedMessage: string;
  sourceLocation?: { file: string };
}
interface SolcOutput {
  errors?: SolcMessage[];
  contracts: Record<
    string,
    Record<
      string,
      {
        abi: unknown[];
        evm: { bytecode: { object: string }; deployedBytecode: { object: string } };
      }
    >
  >;
}

/** Imports resolve like forge's remappings: package paths from node_modules. */
function findImport(path: string): { contents: string } | { error: string } {
  try {
    return { contents: readFileSync(require.resolve(path), 'utf8') };
  } catch {
    return { error: `cannot resolve import ${path} from node_modules` };
  }
}

function compile(): SolcOutput {
  const sources: Record<string, { content: string }> = {};
  for (const file of readdirSync(sourceDir).filter((name) => name.endsWith('.sol'))) {
    sources[`src/${file}`] = { content: readFileSync(join(sourceDir, file), 'utf8') };
  }
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      ...COMPILER_SETTINGS,
      outputSelection: {
        '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
      },
    },
  };
  const output = JSON.parse(
    solc.compile(JSON.stringify(input), { import: findImport }),
  ) as SolcOutput;
  const problems = (output.errors ?? []).filter(
    (message) =>
      message.severity === 'error' ||
      (message.severity === 'warning' && message.sourceLocation?.file.startsWith('src/')),
  );
  if (problems.length > 0) {
    throw new Error(
      `solc ${solc.version()} failed:\n${problems.map((p) => p.formattedMessage).join('\n')}`,
    );
  }
  return output;
}

async function main(): Promise<void> {
  const started = Date.now();
  const output = compile();
  rmSync(artifactsDir, { recursive: true, force: true });
  rmSync(typesDir, { recursive: true, force: true });
  mkdirSync(artifactsDir, { recursive: true });
  for (const [source, contracts] of Object.entries(output.contracts)) {
    // Libraries we import compile too; only our own sources become artifacts.
    if (!source.startsWith('src/')) continue;
    for (const [contractName, contract] of Object.entries(contracts)) {
      const artifact = {
        contractName,
        sourceName: `contracts/${source}`,
        compiler: { version: solc.version(), settings: COMPILER_SETTINGS },
        abi: contract.abi,
        bytecode: `0x${contract.evm.bytecode.object}`,
        deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
      };
      writeFileSync(
        join(artifactsDir, `${contractName}.json`),
        `${JSON.stringify(artifact, null, 2)}\n`,
      );
    }
  }
  const files = glob(root, [join(artifactsDir, '*.json')]);
  await runTypeChain({
    cwd: root,
    filesToProcess: files,
    allFiles: files,
    outDir: typesDir,
    target: 'ethers-v6',
    flags: {
      alwaysGenerateOverloads: false,
      discriminateTypes: false,
      node16Modules: true,
      environment: undefined,
    },
  });
  process.stderr.write(
    `contracts: ${files.length} artifacts and bindings in ${relative(root, contractsDir)}/ (${Date.now() - started} ms)\n`,
  );
}

await main();
