// Loads the native addon: a prebuilt binary from prebuilds/<platform>-<arch>/ when one matches,
// else the one compiled by `npm install` into build/Release/ (node-gyp-build picks).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
/**
 * The one command that builds the addon from source where reward-kernels is installed: it brings the
 * build tools (optional peer dependencies) and reruns the install script (scripts/install.cjs prints it too).
 */
export const BUILD_COMMAND = 'npm install cmake-js node-addon-api && npm rebuild reward-kernels';
/** The same, past the prebuilt CPU binary: builds the CPU addon and, where nvcc is found, the CUDA module. */
export const CUDA_BUILD_COMMAND = `${BUILD_COMMAND} --build-from-source`;
/** The package root (the folder above lib/ or dist/). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function load(): Record<string, unknown> {
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => Record<string, unknown>;
    return nodeGypBuild(packageRoot);
  } catch (err) {
    const cause = err instanceof Error ? err.message : String(err);
    if (/run again with the --allow-\w+ flag/.test(cause)) {
      // Deno without a permission: the binary is there, but Deno may not read it, its environment or load it.
      throw new Error(
        'reward-kernels: Deno needs --allow-read, --allow-env and --allow-ffi to load the native addon ' +
          `(e.g. \`deno run --allow-read --allow-env --allow-ffi main.ts\`). Deno said: ${cause}`,
        { cause: err },
      );
    }
    throw new Error(
      `reward-kernels: no native binary for ${process.platform}-${process.arch} ` +
        `(Node-API 8, Node ${process.versions.node}) in ${packageRoot}. ` +
        'Prebuilt binaries ship for linux-x64; elsewhere build from source: install CMake >= 3.18 ' +
        `and a C++17 compiler, then run \`${BUILD_COMMAND}\` (cmake-js and node-addon-api are ` +
        'optional peer dependencies, needed only to build). ' +
        `Loader said: ${cause}`,
      { cause: err },
    );
  }
}

let addon: Record<string, unknown> | undefined;

/** Loads the addon now (lib/index.ts does at import, so a missing binary is an import-time error). */
export function loadNative(): void {
  addon ??= load();
}

/** The addon's functions, typed by each kernel family's own interface (loaded on first use). */
export function binding<T>(): T {
  addon ??= load();
  return addon as unknown as T;
}
