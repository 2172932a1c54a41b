#!/usr/bin/env node
// The `eip-sim` executable; main.ts stays importable without side effects for in-process tests.
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
