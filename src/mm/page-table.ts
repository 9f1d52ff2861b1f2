import { BlockMap } from '../lib/block-map.ts';
import type { Pte } from './pte.ts';

/** The PTEs of one address space by virtual page number (blocks of 512, like page-table pages). */
export class PageTable extends BlockMap<Pte> {}
