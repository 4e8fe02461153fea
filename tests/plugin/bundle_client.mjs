// Bundles client_driver.ts with the patched app's own service code for Node, with esbuild.
// Usage: node bundle_client.mjs <patched grafana-betrace-app/src> <out.mjs>
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [appSrc, outfile] = process.argv.slice(2);
await build({
  entryPoints: [path.join(here, 'client_driver.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile,
  logLevel: 'warning',
  // the app's modules from the patched tree; its npm dependencies from this folder's lock file
  alias: { 'betrace-app': appSrc, '@grafana/runtime': path.join(here, 'grafana_runtime_stub.ts') },
  nodePaths: [path.join(here, 'node_modules')],
});
