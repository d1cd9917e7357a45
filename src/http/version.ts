import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The `version` of package.json, read once; both `src/` and `dist/` sit one level below it. */
export const BLACKHOLE_VERSION = (
  JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    version: string;
  }
).version;
