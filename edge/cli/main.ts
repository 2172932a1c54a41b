#!/usr/bin/env node
// The `eip-edge` executable; program.ts stays importable without side effects for in-process tests.
import { main } from './program.js';

process.exitCode = await main(process.argv.slice(2));
