#!/usr/bin/env node
// After tsc: copies the files the built code reads at run time (the web view's page script
// and style) next to it in dist/, as they sit next to the sources in src/.
import { cpSync } from 'node:fs';

cpSync('src/view/assets', 'dist/view/assets', { recursive: true });
