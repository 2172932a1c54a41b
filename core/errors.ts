/**
 * One error type for the whole project. A `code` is stable and machine-readable (tests, metrics
 * and MQTT error replies key on it); `retryable` tells callers whether trying again can help, so
 * only transient failures are retried (evcc separates permanent from retryable errors the same way).
 */
export const ERROR_CODES = [
  /** A command-line argument or API argument is malformed or out of range. */
  'INVALID_ARGUMENT',
  /** Strategy parameters psi = (ip, rp, dl, cr) violate their constraints. */
  'INVALID_PSI',
  /** A fixed-point amount is not representable (too many decimals, unsafe integer, negative). */
  'INVALID_AMOUNT',
  /** A utility id that the catalogue does not know. */
  'UNKNOWN_UTILITY',
  /** An MQTT topic outside the catalogue. */
  'UNKNOWN_TOPIC',
  /** An MQTT payload that is not valid JSON or does not match its topic's schema. */
  'INVALID_MESSAGE',
  /** A signature that does not recover to the expected signer, or a broken transcript chain. */
  'INVALID_SIGNATURE',
  /** Reading or writing a file failed. */
  'IO_ERROR',
  /** A client may not do this: log in with these credentials, or publish or read this topic. */
  'UNAUTHORIZED',
  /** The chain refused a transaction or call: it reverts (the contract's error is decoded). */
  'CHAIN_REVERTED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface EipErrorOptions {
  readonly retryable?: boolean;
  readonly cause?: unknown;
  /** Structured context (the parameter, path or value at fault); never secrets. */
  readonly details?: Readonly<Record<string, unknown>>;
}

export class EipError extends Error {
  override readonly name = 'EipError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: EipErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }
}

/** `isEipError(e, 'INVALID_PSI')` narrows `e`; without a code it matches any EipError. */
export function isEipError(error: unknown, code?: ErrorCode): error is EipError {
  return error instanceof EipError && (code === undefined || error.code === code);
}
