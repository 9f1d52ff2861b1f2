/**
 * Virtual time the modelled HCA and wire spend, in ns. Placeholders of the right order of
 * magnitude; the cost model calibrates them against published measurements.
 */

/** One-way latency of the wire between two ports (cable, switch hop, PHY). */
export const WIRE_LATENCY_NS = 1_000;
/** Serialising 4 KiB onto a 56 Gb/s link. */
export const PACKET_4K_NS = 585;
/** Path MTU of the modelled RC connections, in bytes. */
export const MTU = 4096;
/** From a translation miss to the page-fault interrupt (EQE write, MSI-X). */
export const PF_EVENT_NS = 5_000;
/** A UMR work request rewriting an mkey's translation entries, posted to completion. */
export const UMR_NS = 7_000;
/** PAGE_FAULT_RESUME: the firmware command that lets a suspended QP context go on. */
export const RESUME_NS = 5_000;
