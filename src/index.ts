/**
 * odpsim's public API. Anything not exported here is internal.
 * @packageDocumentation
 */

export {
  checkIndex,
  ERRNO_CODES,
  Errno,
  type ErrnoCode,
  isErrno,
  isOdpsimError,
  OdpsimError,
} from './lib/errors.ts';
export { Prng } from './lib/prng.ts';
export { VERSION } from './version.ts';
