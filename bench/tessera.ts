/**
 * Where the benchmark loads Tessera from. `bench/run.ts` compiles `src/` with `tsc` into a
 * private directory and passes it as `BENCH_TESSERA_DIR`, so the servers run the JavaScript
 * users get from `dist/`; without it (or with `--from-src`) the TypeScript sources are loaded
 * through tsx, whose esbuild transform adds a small per-closure cost (`keepNames`).
 * @module
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', 'src')
/** The directory Tessera's modules are loaded from. */
export const TESSERA_DIR = process.env.BENCH_TESSERA_DIR || SRC
const compiled = TESSERA_DIR !== SRC

/** A 32-byte secret shared by every variant (the bench is not about secrets). */
export const SECRET = 'bench-secret-0123456789abcdef-0123456789abcdef'

/** A session of about 200 bytes of JSON, for the micro-benchmarks and the floors' counts. */
export const PAYLOAD = {
  userId: 'u_7f3a9c21',
  count: 42,
  roles: ['editor', 'viewer'],
  locale: 'en-GB',
  cart: [
    { sku: 'A-1001', qty: 2 },
    { sku: 'B-2002', qty: 1 },
  ],
  lastPage: '/account/orders?page=2',
  csrf: 'k3J9xQ0vR2mT8wYb5nL1',
}

/** Whether a part of Tessera exists in the sources (adapters and stores being written). */
export const hasSource = (rel: string) => existsSync(join(SRC, rel.replace(/\.js$/, '.ts')))

/** Import a Tessera module by its path under `src/`, e.g. `stores/memory.js`. */
export function fromTessera<T>(rel: string): Promise<T> {
  const file = join(TESSERA_DIR, compiled ? rel : rel.replace(/\.js$/, '.ts'))
  return import(pathToFileURL(file).href) as Promise<T>
}
