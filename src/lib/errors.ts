/**
 * The error base of odpsim and the errno-style error that rejected input raises.
 *
 * Every error odpsim throws on purpose derives from {@link OdpsimError}, so a caller can tell
 * a model verdict from a crash with {@link isOdpsimError}.
 */

/** Base class of every error odpsim throws on purpose. */
export class OdpsimError extends Error {
  override name = 'OdpsimError';
}

/** The errno codes the model returns, as in include/uapi/asm-generic/errno-base.h. */
export const ERRNO_CODES = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  EAGAIN: 11,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  ETIMEDOUT: 110,
} as const;

/** An errno name such as `'EINVAL'`. */
export type ErrnoCode = keyof typeof ERRNO_CODES;

/**
 * A rejected simulated syscall or driver operation: the kernel's `-EINVAL` and friends.
 * `code` is the errno name, `errno` its number; the message says what was wrong.
 */
export class Errno extends OdpsimError {
  override name = 'Errno';
  readonly code: ErrnoCode;
  readonly errno: number;
  constructor(code: ErrnoCode, message: string) {
    // An errno is an expected outcome in the model (thousands per exploration): skip the
    // stack capture, which costs more than the rest of the run step.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${code}: ${message}`);
    Error.stackTraceLimit = limit;
    this.code = code;
    this.errno = ERRNO_CODES[code];
  }
}

/** True for any error odpsim raised on purpose (an {@link Errno}, a kernel bug, ...). */
export function isOdpsimError(e: unknown): e is OdpsimError {
  return e instanceof OdpsimError;
}

/** True when `e` is an {@link Errno}, optionally with the given code. */
export function isErrno(e: unknown, code?: ErrnoCode): e is Errno {
  return e instanceof Errno && (code === undefined || e.code === code);
}

/**
 * Checks that `value` is a safe non-negative integer, naming `what` in the EINVAL otherwise.
 * Shared by every public entry point that takes an address, a length or a count.
 */
export function checkIndex(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new Errno(
      'EINVAL',
      `${what} must be a non-negative safe integer, got ${describe(value)}`,
    );
  }
  return value;
}

/** A short, printable rendering of a bad argument for error messages. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'object' && value !== null)
    return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
}
