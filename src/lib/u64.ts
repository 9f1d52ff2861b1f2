/** Little-endian 64-bit words, as the atomics of the RDMA devices read and write them. */

/** The little-endian 64-bit value of the first 8 bytes of `b`. */
export function readU64(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

/** The 8 little-endian bytes of a 64-bit value. */
export function u64Bytes(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  let x = BigInt.asUintN(64, v);
  for (let i = 0; i < 8; i++) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return b;
}

/** The new value of an atomic's word: the sum, or `swap` when `old` equals `compareAdd`. */
export function atomicResult(
  fetchAdd: boolean,
  old: bigint,
  compareAdd: bigint,
  swap: bigint,
): bigint {
  if (fetchAdd) return BigInt.asUintN(64, old + compareAdd);
  return old === compareAdd ? swap : old;
}
