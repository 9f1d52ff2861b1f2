#!/usr/bin/env node
// The odpsim command. Until the scenarios and the explorer exist it says what it will do.
import { VERSION } from '../version.ts';

console.log(`odpsim ${VERSION}`);
console.log(
  'An executable model of Linux on-demand paging for devices. odpsim will run scenarios in which\n' +
    'devices mirror process address spaces through MMU notifiers, explore their thread\n' +
    'interleavings, and report minimised, replayable counterexamples when a device uses a page\n' +
    'its process no longer maps. The scenarios and the explorer are being built.',
);
