#!/usr/bin/env node
// The odpsim command (bin entry): `odpsim run|explore|replay|list`. See program.ts.
import { processIo } from './io.ts';
import { main } from './program.ts';

process.exitCode = await main(process.argv.slice(2), processIo);
