/**
 * How the outbox lays records out in LevelDB. Keys sort by sequence number: `r` and the seq as
 * 8 bytes big-endian, so LevelDB's byte order is seq order and a range scan reads the oldest
 * first. The one bookkeeping entry, `m`, sorts before every record.
 *
 * A record's value carries its own CRC-32 over the key and the rest of the value. LevelDB checks
 * its block checksums only when asked to, and a flipped digit in a JSON payload still parses: a
 * reading must not reach the chain with a value the meter never sent. Covering the key too means
 * a value under the wrong key is caught as well.
 */
import { crc32 } from 'node:zlib';
import { z } from 'zod';
import { EipError } from '../../core/errors.js';

export interface OutboxRecord {
  readonly seq: number;
  readonly topic: string;
  readonly payload: string;
  readonly enqueued_at_ms: number;
}

const RECORD_PREFIX = 0x72; // 'r'
export const META_KEY = Buffer.from('m');
/** Every record key lies in [RECORDS_START, RECORDS_END). */
export const RECORDS_START = Buffer.from([RECORD_PREFIX]);
export const RECORDS_END = Buffer.from([RECORD_PREFIX + 1]);

export function recordKey(seq: number): Buffer {
  const key = Buffer.alloc(9);
  key[0] = RECORD_PREFIX;
  key.writeBigUInt64BE(BigInt(seq), 1);
  return key;
}

export function seqOf(key: Buffer): number {
  return Number(key.readBigUInt64BE(1));
}

// version (1) | crc32 (4) | enqueued_at_ms as float64 (8) | topic length (2) | topic | payload
const FORMAT_VERSION = 1;
const HEADER_BYTES = 1 + 4 + 8 + 2;

export function encodeRecord(key: Buffer, record: Omit<OutboxRecord, 'seq'>): Buffer {
  const topic = Buffer.from(record.topic, 'utf8');
  if (topic.length > 0xffff) {
    throw new EipError('INVALID_ARGUMENT', `outbox topic is ${topic.length} bytes, over 65535`);
  }
  const payload = Buffer.from(record.payload, 'utf8');
  const value = Buffer.alloc(HEADER_BYTES + topic.length + payload.length);
  value[0] = FORMAT_VERSION;
  value.writeDoubleBE(record.enqueued_at_ms, 5);
  value.writeUInt16BE(topic.length, 13);
  topic.copy(value, HEADER_BYTES);
  payload.copy(value, HEADER_BYTES + topic.length);
  value.writeUInt32BE(checksum(key, value), 1);
  return value;
}

/** Throws an IO_ERROR that says what is wrong when the value is not a record written for `key`. */
export function decodeRecord(key: Buffer, value: Buffer): OutboxRecord {
  const seq = seqOf(key);
  const corrupt = (why: string) =>
    new EipError('IO_ERROR', `outbox record ${seq} is corrupt: ${why}`, { details: { seq } });
  if (value.length < HEADER_BYTES) throw corrupt(`${value.length} bytes, shorter than a header`);
  if (value[0] !== FORMAT_VERSION) throw corrupt(`unknown format version ${value[0]}`);
  if (value.readUInt32BE(1) !== checksum(key, value)) throw corrupt('checksum mismatch');
  const topicEnd = HEADER_BYTES + value.readUInt16BE(13);
  if (topicEnd > value.length) throw corrupt('topic runs past the end');
  return {
    seq,
    topic: value.toString('utf8', HEADER_BYTES, topicEnd),
    payload: value.toString('utf8', topicEnd),
    enqueued_at_ms: value.readDoubleBE(5),
  };
}

function checksum(key: Buffer, value: Buffer): number {
  return crc32(value.subarray(5), crc32(value.subarray(0, 1), crc32(key)));
}

/** What the bounds are counted in: a record's key and value, as LevelDB is handed them. */
export function storedSize(key: Buffer, value: Buffer): number {
  return key.length + value.length;
}

const count = z.number().int().nonnegative();

/** Written in the same batch as every change, so it is always true of the records beside it. */
export const metaSchema = z.strictObject({
  nextSeq: count,
  depth: count,
  bytes: count,
  appended: count,
  acked: count,
  dropped: count,
  corrupt: count,
  commits: count,
});

export type Meta = z.infer<typeof metaSchema>;

export function emptyMeta(nextSeq: number): Meta {
  return { nextSeq, depth: 0, bytes: 0, appended: 0, acked: 0, dropped: 0, corrupt: 0, commits: 0 };
}

export function encodeMeta(meta: Meta): Buffer {
  return Buffer.from(JSON.stringify(meta), 'utf8');
}

/** The meta entry, or why it cannot be read. */
export function decodeMeta(value: Buffer): Meta | string {
  try {
    const result = metaSchema.safeParse(JSON.parse(value.toString('utf8')));
    return result.success ? result.data : result.error.issues.map((i) => i.message).join('; ');
  } catch (error) {
    return (error as Error).message;
  }
}
