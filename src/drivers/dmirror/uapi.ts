/**
 * The user interface of the HMM test device (lib/test_hmm_uapi.h): request codes,
 * the command block, SNAPSHOT byte encoding and FLAGS bits.
 */

// HMM_DMIRROR_* ioctl requests (the low byte of the ioctl number).
/** HMM_DMIRROR_READ: the device reads `npages` pages into the buffer, faulting them in. */
export const HMM_DMIRROR_READ = 0x00;
/** HMM_DMIRROR_WRITE: the device writes `npages` pages from the buffer, faulting them in. */
export const HMM_DMIRROR_WRITE = 0x01;
/** HMM_DMIRROR_MIGRATE_TO_DEV: migrate to device-private memory, then read the range back. */
export const HMM_DMIRROR_MIGRATE_TO_DEV = 0x02;
/** HMM_DMIRROR_MIGRATE_TO_SYS: migrate this device's pages back to system memory. */
export const HMM_DMIRROR_MIGRATE_TO_SYS = 0x03;
/** HMM_DMIRROR_SNAPSHOT: one HMM_DMIRROR_PROT_* byte per page, without faulting. */
export const HMM_DMIRROR_SNAPSHOT = 0x04;
/** HMM_DMIRROR_EXCLUSIVE: make_device_exclusive() on the range, then read it back. */
export const HMM_DMIRROR_EXCLUSIVE = 0x05;
/** HMM_DMIRROR_CHECK_EXCLUSIVE: EPERM while a page of the range is still exclusive. */
export const HMM_DMIRROR_CHECK_EXCLUSIVE = 0x06;
/** HMM_DMIRROR_RELEASE: evict and remove the device's private memory. */
export const HMM_DMIRROR_RELEASE = 0x07;
/** HMM_DMIRROR_FLAGS: set HMM_DMIRROR_FLAG_* test switches. */
export const HMM_DMIRROR_FLAGS = 0x08;

/** HMM_DMIRROR_FLAG_FAIL_ALLOC: fail the next device page allocation once. */
export const HMM_DMIRROR_FLAG_FAIL_ALLOC = 1;

// SNAPSHOT bytes, one per page (the HMM_DMIRROR_PROT_* enum).
/** HMM_DMIRROR_PROT_ERROR: no valid entry for the page (HMM_PFN_ERROR). */
export const HMM_DMIRROR_PROT_ERROR = 0xff;
/** HMM_DMIRROR_PROT_NONE: no entry, or one with no access. */
export const HMM_DMIRROR_PROT_NONE = 0x00;
/** HMM_DMIRROR_PROT_READ: a read-only entry. */
export const HMM_DMIRROR_PROT_READ = 0x01;
/** HMM_DMIRROR_PROT_WRITE: a read/write entry. */
export const HMM_DMIRROR_PROT_WRITE = 0x02;
/** HMM_DMIRROR_PROT_PMD: mapped by a PMD (2 MiB) entry. */
export const HMM_DMIRROR_PROT_PMD = 0x04;
/** HMM_DMIRROR_PROT_PUD: mapped by a PUD (1 GiB) entry. */
export const HMM_DMIRROR_PROT_PUD = 0x08;
/** HMM_DMIRROR_PROT_ZERO: the shared zero page (read-only). */
export const HMM_DMIRROR_PROT_ZERO = 0x10;
/** HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL: device-private memory of this device. */
export const HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20;
/** HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE: device-private memory of another device. */
export const HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30;

/**
 * struct hmm_dmirror_cmd. `ptr` is the user's mirror buffer (modelled as a byte array the
 * device copies to and from); `cpages` and `faults` are written back only on success.
 */
export interface HmmDmirrorCmd {
  addr: number;
  ptr: Uint8Array;
  npages: number;
  cpages: number;
  faults: number;
}
