/**
 * Status dots, the same language on every node: green dot, working (reading, connected); yellow,
 * waiting or stale (connecting, values from an earlier read); red ring, failing (the text says
 * why, and the error went to Catch nodes).
 */
import type { NodeStatus } from './red.js';

export const working = (text: string): NodeStatus => ({ fill: 'green', shape: 'dot', text });
export const stale = (text: string): NodeStatus => ({ fill: 'yellow', shape: 'dot', text });
export const waiting = (text: string): NodeStatus => ({ fill: 'yellow', shape: 'ring', text });
export const failing = (error: unknown): NodeStatus => ({
  fill: 'red',
  shape: 'ring',
  text: brief(error),
});

/** The local time of day, HH:MM:SS: what a technician compares with the clock on the wall. */
export function clock(at: number = Date.now()): string {
  return new Date(at).toTimeString().slice(0, 8);
}

/** A status line has room for a phrase, not a paragraph: the first line, cut at 60 characters. */
export function brief(error: unknown): string {
  const line = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
  return line.length > 60 ? `${line.slice(0, 59)}…` : line;
}
