/**
 * The public API of the simulated memory manager, the MMU notifiers, the drivers and the
 * oracles: what a user needs to build a world of their own. Re-exported by src/index.ts.
 * @packageDocumentation
 */

export { checkMutants, MUTANTS, type MutantInfo } from './check/mutants.ts';
export { CoherenceOracle } from './check/oracles/coherence.ts';
export {
  installOracles,
  type Oracles,
} from './check/oracles/install.ts';
export { checkLeaks, type LeakReport, measureLeaks } from './check/oracles/leaks.ts';
export { PairingOracle } from './check/oracles/pairing.ts';
export { type OracleEntry, registeredOracles, registerOracle } from './check/oracles/registry.ts';
export { TlbOracle } from './check/oracles/tlb.ts';
export { DmirrorDevice } from './drivers/dmirror/device.ts';
export { Dmirror } from './drivers/dmirror/dmirror.ts';
export * from './drivers/dmirror/uapi.ts';
export { svaDma, svaDmaReadU32, svaDmaWriteU32 } from './drivers/iommu/ats.ts';
export {
  iommuReportDeviceFault,
  iommuSvaHandleIopf,
  type PageResponse,
} from './drivers/iommu/io-pgfault.ts';
export { iommuSvaBindDevice, iommuSvaUnbindDevice, SvaBond } from './drivers/iommu/sva.ts';
export { KvmMirror } from './drivers/kvm/kvm-mirror.ts';
export * from './mm/constants.ts';
export { cpuRead, cpuReadU32, cpuWrite, cpuWriteU32 } from './mm/cpu-access.ts';
export { makeDeviceExclusive } from './mm/device-exclusive.ts';
export { exitMmap, mmput } from './mm/exit.ts';
export { handleMmFault } from './mm/fault.ts';
export { File, type FileOps } from './mm/file.ts';
export { fork } from './mm/fork.ts';
export { type GupOptions, getUserPages, unpinUserPages } from './mm/gup.ts';
export {
  HMM_PFN_ERROR,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  type HmmRange,
  type HmmRequest,
  hmmPfnFlags,
  hmmPfnMapOrder,
  hmmPfnToPfn,
  hmmRange,
  hmmRangeFault,
} from './mm/hmm.ts';
export { pmdAlign, splitHugePmd, thpEligible } from './mm/huge-memory.ts';
export { Machine, type MachineOptions } from './mm/machine.ts';
export { madvise } from './mm/madvise.ts';
export {
  DEV_PAGEMAP_MAX_PAGES,
  DevPagemap,
  type DevPagemapOps,
  isDevicePrivatePage,
  type VmFault,
} from './mm/memremap.ts';
export { migratePage } from './mm/migrate.ts';
export {
  MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  type MigrateDst,
  type MigrateSrc,
  type MigrateVma,
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDeviceRange,
  migrateVma,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
} from './mm/migrate-device.ts';
export { Mm } from './mm/mm.ts';
export { MM_PATH_CONDITIONS, MM_PATHS, type MmPathName, mmPathCondition } from './mm/mm-path.ts';
export { mmdrop, mmget, mmgetNotZero, mmgrab } from './mm/mm-refs.ts';
export { type MmapArgs, mmap } from './mm/mmap.ts';
export {
  mmuIntervalCheckRetry,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierInsertLocked,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
} from './mm/mmu-interval-notifier.ts';
export {
  MmuIntervalNotifier,
  type MmuIntervalNotifierOps,
} from './mm/mmu-interval-notifier-types.ts';
export {
  clearFlushYoung,
  clearYoung,
  invalidateRangeEnd,
  invalidateRangeStart,
  invalidateRangeStartNonblock,
  rangeInit,
  testYoung,
} from './mm/mmu-notifier.ts';
export {
  MN_CALLBACK_ITEMS,
  MN_CLIENTS,
  MN_CONDITIONS,
  type MnCallback,
  type MnClient,
  type MnClientInfo,
  mnCondition,
  RAISED_EVENTS,
} from './mm/mmu-notifier-clients.ts';
export {
  mmuNotifierGet,
  mmuNotifierPut,
  mmuNotifierRegister,
  mmuNotifierSynchronize,
  mmuNotifierUnregister,
} from './mm/mmu-notifier-register.ts';
export {
  EAGAIN,
  MmuNotifier,
  type MmuNotifierOps,
  type MmuNotifierRange,
  type MmuNotifyEvent,
} from './mm/mmu-notifier-types.ts';
export { mprotect } from './mm/mprotect.ts';
export { mremap } from './mm/mremap.ts';
export { munmap } from './mm/munmap.ts';
export { type OomReapResult, oomReap } from './mm/oom-reaper.ts';
export { Page } from './mm/page.ts';
export type { Pte } from './mm/pte.ts';
export { shrinkMemory } from './mm/reclaim.ts';
export { type DeviceTranslation, SecondaryMmu, snapshotPte } from './mm/secondary-mmu.ts';
export { CPU_TLB, CPU_TLB_ENTRIES, cpuTlb, flushTlbRange } from './mm/tlb.ts';
export {
  type CachedTranslation,
  type CacheGeometry,
  type CacheKind,
  TranslationCache,
} from './mm/tlb-cache.ts';
export { truncateFile, unmapMappingRange } from './mm/truncate.ts';
export { Vma, type VmFaultResult, type VmOps } from './mm/vma.ts';
