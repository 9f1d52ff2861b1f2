// Command sequences over the public API, with bad arguments mixed into good ones. A command is
// plain data (so fast-check can print and shrink it); addresses and lengths are specs the runner
// resolves against the world as it is when the command runs: "page 3 of the second VMA" stays
// meaningful while earlier commands move the mappings around.
import fc from 'fast-check';
import {
  HMM_DMIRROR_CHECK_EXCLUSIVE,
  HMM_DMIRROR_FLAGS,
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_WRITE,
  MADV_DONTNEED,
  MADV_FREE,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SIZE,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  TASK_SIZE,
} from '../../src/index.ts';

/** A value passed as it is: often wrong (NaN, negative, unaligned, past TASK_SIZE, not a number). */
export interface Raw {
  readonly k: 'raw';
  readonly v: unknown;
}
/** An address: `page` pages (and `off` bytes) from the start of one of the mm's VMAs. */
export interface VmaAddr {
  readonly k: 'vma';
  readonly vma: number;
  readonly page: number;
  readonly off: number;
}
/** An address above mmap_base, where nothing is mapped unless MAP_FIXED put it there. */
export interface GapAddr {
  readonly k: 'gap';
  readonly page: number;
}
export type AddrSpec = VmaAddr | GapAddr | Raw;
/** A length of whole pages plus `off` bytes, or a raw value. */
export type LenSpec = { readonly k: 'pages'; readonly n: number; readonly off: number } | Raw;
/** What an mmap maps: nothing given (a file mapping without a file), or a file. */
export type FileSel = 'none' | 'rw' | 'ro' | 'dev';
/** An ioctl buffer: big enough for npages, one byte short, or not a buffer at all. */
export type BufSel = 'fit' | 'short' | 'none';

/** One call of the public API. `mm`, `sub`, `set`, `mirror` and `dev` pick from the world's pools. */
export type Command =
  | {
      readonly op: 'mmap';
      readonly mm: number;
      readonly addr: AddrSpec;
      readonly len: LenSpec;
      readonly prot: unknown;
      readonly flags: unknown;
      readonly file: FileSel;
      readonly offset: unknown;
    }
  | { readonly op: 'munmap'; readonly mm: number; readonly addr: AddrSpec; readonly len: LenSpec }
  | {
      readonly op: 'mprotect';
      readonly mm: number;
      readonly addr: AddrSpec;
      readonly len: LenSpec;
      readonly prot: unknown;
    }
  | {
      readonly op: 'mremap';
      readonly mm: number;
      readonly addr: AddrSpec;
      readonly oldLen: LenSpec;
      readonly newLen: LenSpec;
      readonly flags: unknown;
      readonly newAddr: AddrSpec;
    }
  | {
      readonly op: 'madvise';
      readonly mm: number;
      readonly addr: AddrSpec;
      readonly len: LenSpec;
      readonly advice: unknown;
    }
  | { readonly op: 'fork'; readonly mm: number }
  | { readonly op: 'exit'; readonly mm: number }
  | { readonly op: 'read'; readonly mm: number; readonly addr: AddrSpec; readonly len: LenSpec }
  | { readonly op: 'write'; readonly mm: number; readonly addr: AddrSpec; readonly bytes: number }
  | {
      readonly op: 'gup';
      readonly mm: number;
      readonly addr: AddrSpec;
      readonly npages: unknown;
      readonly write: boolean;
      readonly pin: boolean;
      readonly longterm: boolean;
    }
  | { readonly op: 'unpin'; readonly set: number }
  | { readonly op: 'register'; readonly mm: number; readonly sub: number }
  | { readonly op: 'unregister'; readonly sub: number }
  | { readonly op: 'get'; readonly mm: number; readonly alloc: boolean }
  | { readonly op: 'put'; readonly sub: number }
  | {
      readonly op: 'insert';
      readonly mm: number;
      readonly sub: number;
      readonly start: AddrSpec;
      readonly length: LenSpec;
    }
  | { readonly op: 'remove'; readonly sub: number }
  | {
      readonly op: 'hmm';
      readonly mm: number;
      readonly sub: number;
      readonly start: AddrSpec;
      readonly len: LenSpec;
      readonly fault: boolean;
      readonly write: boolean;
    }
  | { readonly op: 'device'; readonly index: unknown }
  | { readonly op: 'open'; readonly dev: number; readonly mm: number }
  | {
      readonly op: 'ioctl';
      readonly mirror: number;
      readonly request: unknown;
      readonly addr: AddrSpec;
      readonly npages: unknown;
      readonly buf: BufSel;
    }
  | { readonly op: 'close'; readonly mirror: number }
  | { readonly op: 'truncate'; readonly file: 'rw' | 'ro' | 'dev'; readonly size: unknown }
  | { readonly op: 'bind'; readonly mm: number }
  | { readonly op: 'unbind'; readonly bond: number }
  | {
      readonly op: 'dma' | 'iopf';
      readonly bond: number;
      readonly addr: AddrSpec;
      readonly write: boolean;
    };

const P = PAGE_SIZE;

/** Numbers every check must refuse or survive: not integers, negative, unaligned, huge. */
export const WEIRD_NUMBERS: readonly number[] = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -1,
  -P,
  -0,
  0,
  0.5,
  1,
  P - 1,
  P + 1,
  1.5 * P,
  2 ** 31,
  2 ** 32,
  TASK_SIZE - P,
  TASK_SIZE,
  TASK_SIZE + P,
  2 ** 52,
  Number.MAX_SAFE_INTEGER,
  2 ** 53,
  2 ** 64 - P,
  2 ** 64,
  1e300,
  -(2 ** 53),
];

/** What a JavaScript caller may pass where a number goes. */
export const NOT_NUMBERS: readonly unknown[] = [undefined, null, '4096', 4096n, true];

const weird = fc.constantFrom(...WEIRD_NUMBERS);
const notNumber = fc.constantFrom(...NOT_NUMBERS);
const anyInt = fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 });

/** A raw value: mostly odd numbers, sometimes not a number at all. */
export const rawValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: weird },
  { weight: 2, arbitrary: anyInt },
  { weight: 1, arbitrary: notNumber },
);

const raw = rawValue.map((v): Raw => ({ k: 'raw', v }));

/** Choices mixed with bad values in a bad command, left out of a good one. */
function mixed<T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>, mix: boolean) {
  return mix ? fc.oneof({ weight: 3, arbitrary: good }, { weight: 1, arbitrary: bad }) : good;
}

const PROTS = [
  PROT_NONE,
  PROT_READ,
  PROT_READ | PROT_WRITE,
  PROT_WRITE,
  PROT_READ | PROT_EXEC,
  PROT_READ | PROT_WRITE | PROT_EXEC,
];

/** The argument arbitraries of good commands (`mix` false) or of commands with bad arguments. */
function argumentsOf(mix: boolean) {
  const addr = mixed<AddrSpec>(
    fc.oneof(
      {
        weight: 12,
        arbitrary: fc.record({
          k: fc.constant('vma' as const),
          vma: fc.nat(7),
          page: mix ? fc.integer({ min: -2, max: 12 }) : fc.integer({ min: 0, max: 3 }),
          off: mix ? fc.constantFrom(0, 0, 0, 1, P / 2, P - 1) : fc.constant(0),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          k: fc.constant('gap' as const),
          page: fc.integer({ min: 0, max: 64 }),
        }),
      },
    ),
    fc.oneof(
      fc.integer({ min: 0, max: TASK_SIZE / P }).map((n): Raw => ({ k: 'raw', v: n * P })),
      raw,
    ),
    mix,
  );
  const pages = (min: number, max: number) =>
    mixed<LenSpec>(
      fc.record({
        k: fc.constant('pages' as const),
        n: fc.integer({ min: mix ? 0 : min, max: mix ? 12 : max }),
        off: mix ? fc.constantFrom(0, 0, 0, 1, P - 1) : fc.constant(0),
      }),
      raw,
      mix,
    );
  /** The length of a new mapping, and of an access or change inside one. */
  const [mapLen, len] = [pages(2, 10), pages(1, 3)];
  /** A count of pages: small, or raw. */
  const count = mixed<unknown>(fc.integer({ min: mix ? 0 : 1, max: mix ? 16 : 4 }), rawValue, mix);
  const prot = mixed<unknown>(
    fc.constantFrom(...PROTS, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE),
    fc.oneof(fc.constantFrom(0x8, 0x10, 0x01000000, PROT_READ | 0x20, -1, 2 ** 32 + 3), rawValue),
    mix,
  );
  /** mmap flags: a sharing type, modifiers and, in a bad command, neither type, both or unknown bits. */
  const mmapFlags = mixed<unknown>(
    fc
      .record({
        type: fc.constantFrom(MAP_PRIVATE, MAP_PRIVATE, MAP_SHARED),
        anon: fc.boolean(),
        fixed: fc.constantFrom(0, 0, 0, 0, MAP_FIXED, MAP_FIXED_NOREPLACE),
        populate: fc.constantFrom(0, 0, 0, MAP_POPULATE),
      })
      .map((f) => f.type | (f.anon ? MAP_ANONYMOUS : 0) | f.fixed | f.populate),
    fc.oneof(
      fc
        .record({
          type: fc.constantFrom(0, MAP_PRIVATE | MAP_SHARED, MAP_PRIVATE),
          unknown: fc.constantFrom(0, 0x40, 0x4000, 0x80000000, 2 ** 32),
        })
        .map((f) => f.type | MAP_ANONYMOUS | f.unknown),
      rawValue,
    ),
    mix,
  );
  const mremapFlags = mixed<unknown>(
    fc.constantFrom(
      0,
      MREMAP_MAYMOVE,
      MREMAP_MAYMOVE,
      MREMAP_MAYMOVE | MREMAP_FIXED,
      MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
    ),
    fc.oneof(fc.constantFrom(MREMAP_FIXED, MREMAP_DONTUNMAP, 0x8, 2 ** 32 + 1), rawValue),
    mix,
  );
  const advice = mixed<unknown>(
    fc.constantFrom(MADV_DONTNEED, MADV_FREE),
    // MADV_NORMAL, MADV_WILLNEED, MADV_REMOVE, MADV_COLD: valid in Linux, not in the model.
    fc.oneof(fc.constantFrom(0, 3, 9, 20, 1000, -4, 2 ** 32 + 4), rawValue),
    mix,
  );
  const request = mixed<unknown>(
    fc.constantFrom(HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_READ),
    fc.oneof(
      fc.constantFrom(HMM_DMIRROR_FLAGS, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_CHECK_EXCLUSIVE),
      fc.constantFrom(0x42, -1, 2 ** 32),
      rawValue,
    ),
    mix,
  );
  const offset = mixed<unknown>(fc.constantFrom(0, 0, 0, P, 2 * P), rawValue, mix);
  const file = mix
    ? fc.constantFrom<FileSel>('rw', 'rw', 'ro', 'dev', 'none')
    : fc.constantFrom<FileSel>('rw', 'ro', 'dev');
  const buf = mix
    ? fc.constantFrom<BufSel>('fit', 'fit', 'short', 'none')
    : fc.constant<BufSel>('fit');
  const size = mixed<unknown>(
    fc.integer({ min: 0, max: 10 }).map((n) => n * P),
    fc.oneof(fc.integer({ min: 0, max: 10 * P }), rawValue),
    mix,
  );
  const index = mixed<unknown>(
    fc.constantFrom(0, 1, 2, 3),
    fc.oneof(fc.constantFrom(-1, 4, 0.5), rawValue),
    mix,
  );
  return {
    addr,
    mapLen,
    len,
    count,
    prot,
    mmapFlags,
    mremapFlags,
    advice,
    request,
    offset,
    file,
    buf,
    size,
    index,
  };
}

const sub = fc.nat(5);

/** One command of any kind, weighted toward the mm calls; `mix` mixes bad arguments in. */
function commandOf(mix: boolean): fc.Arbitrary<Command> {
  const a = argumentsOf(mix);
  const { addr, len, prot } = a;
  const mm = fc.oneof(fc.constant(0), fc.nat(5));
  return fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        op: fc.constant('mmap' as const),
        mm,
        addr,
        len: a.mapLen,
        prot,
        flags: a.mmapFlags,
        file: a.file,
        offset: a.offset,
      }),
    },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('munmap' as const), mm, addr, len }) },
    {
      weight: 3,
      arbitrary: fc.record({ op: fc.constant('mprotect' as const), mm, addr, len, prot }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('mremap' as const),
        mm,
        addr,
        oldLen: len,
        newLen: a.mapLen,
        flags: a.mremapFlags,
        newAddr: addr,
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('madvise' as const),
        mm,
        addr,
        len,
        advice: a.advice,
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('fork' as const), mm }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('exit' as const), mm }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('read' as const), mm, addr, len }) },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('write' as const),
        mm,
        addr,
        bytes: fc.constantFrom(1, 4, P, 2 * P + 3),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('gup' as const),
        mm,
        addr,
        npages: a.count,
        write: fc.boolean(),
        pin: fc.boolean(),
        longterm: fc.boolean(),
      }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('unpin' as const), set: fc.nat(3) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('register' as const), mm, sub }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('unregister' as const), sub }) },
    {
      weight: 1,
      arbitrary: fc.record({ op: fc.constant('get' as const), mm, alloc: fc.boolean() }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('put' as const), sub }) },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('insert' as const),
        mm,
        sub,
        start: addr,
        length: len,
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), sub }) },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('hmm' as const),
        mm,
        sub,
        start: addr,
        len,
        fault: fc.boolean(),
        write: fc.boolean(),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('device' as const), index: a.index }) },
    {
      weight: 1,
      arbitrary: fc.record({ op: fc.constant('open' as const), dev: fc.nat(2), mm }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        op: fc.constant('ioctl' as const),
        mirror: fc.nat(3),
        request: a.request,
        addr,
        npages: a.count,
        buf: a.buf,
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ op: fc.constant('close' as const), mirror: fc.nat(3) }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('truncate' as const),
        file: fc.constantFrom<'rw' | 'ro' | 'dev'>('rw', 'rw', 'ro', 'dev'),
        size: a.size,
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('bind' as const), mm }) },
    {
      weight: 2,
      arbitrary: fc.record({ op: fc.constant('unbind' as const), bond: fc.nat(2) }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constantFrom('dma' as const, 'iopf' as const),
        bond: fc.nat(2),
        addr,
        write: fc.boolean(),
      }),
    },
  );
}

/** One command: good three times in five, with bad arguments mixed in otherwise. */
export const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: commandOf(false) },
  { weight: 2, arbitrary: commandOf(true) },
);

/** A good mmap of the first address space: sequences start with a few, so the rest has memory to act on. */
const firstMap: fc.Arbitrary<Command> = fc.record({
  op: fc.constant('mmap' as const),
  mm: fc.constant(0),
  addr: fc.constant<AddrSpec>({ k: 'raw', v: 0 }),
  len: fc.integer({ min: 2, max: 12 }).map((n): LenSpec => ({ k: 'pages', n, off: 0 })),
  prot: fc.constantFrom(PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_READ),
  flags: fc.constantFrom(
    MAP_PRIVATE | MAP_ANONYMOUS,
    MAP_SHARED | MAP_ANONYMOUS,
    MAP_PRIVATE,
    MAP_SHARED,
  ),
  file: fc.constantFrom<FileSel>('rw', 'rw', 'dev'),
  offset: fc.constant(0),
});

/** A sequence of commands for one world: a few mappings, then anything. */
export const commands: fc.Arbitrary<Command[]> = fc
  .tuple(fc.array(firstMap, { minLength: 1, maxLength: 3 }), fc.array(command, { maxLength: 24 }))
  .map(([maps, rest]) => [...maps, ...rest]);
