/**
 * The user interface of the HMM test device (include/uapi/linux/test_hmm.h): request codes,
 * the command block, SNAPSHOT byte encoding and FLAGS bits.
 */

/** HMM_DMIRROR_* ioctl requests (the low byte of the ioctl number). */
export const HMM_DMIRROR_READ = 0x00;
export const HMM_DMIRROR_WRITE = 0x01;
export const HMM_DMIRROR_MIGRATE_TO_DEV = 0x02;
export const HMM_DMIRROR_MIGRATE_TO_SYS = 0x03;
export const HMM_DMIRROR_SNAPSHOT = 0x04;
export const HMM_DMIRROR_EXCLUSIVE = 0x05;
export const HMM_DMIRROR_CHECK_EXCLUSIVE = 0x06;
export const HMM_DMIRROR_RELEASE = 0x07;
export const HMM_DMIRROR_FLAGS = 0x08;

/** HMM_DMIRROR_FLAG_FAIL_ALLOC: fail the next device page allocation once. */
export const HMM_DMIRROR_FLAG_FAIL_ALLOC = 1;

/** SNAPSHOT bytes (enum hmm_dmirror_snapshot). */
export const HMM_DMIRROR_PROT_ERROR = 0xff;
export const HMM_DMIRROR_PROT_NONE = 0x00;
export const HMM_DMIRROR_PROT_READ = 0x01;
export const HMM_DMIRROR_PROT_WRITE = 0x02;
export const HMM_DMIRROR_PROT_PMD = 0x04;
export const HMM_DMIRROR_PROT_PUD = 0x08;
export const HMM_DMIRROR_PROT_ZERO = 0x10;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20;
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
