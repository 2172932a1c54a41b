/**
 * The JSON Schema of the edge config, for editors (VS Code's YAML extension reads the
 * `# yaml-language-server: $schema=` line of example.yaml). `config.schema.json` beside this file
 * is this document; a test fails when they differ (`npx vitest run -u test/edge/config` rewrites it).
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://github.com/eip-market/eip-market/edge/config/config.schema.json',
    title: 'eip-edge configuration',
  };
}
