#!/usr/bin/env node
// npm's install hook ("install" in package.json), in a consumer's node_modules/reward-kernels and in
// a clone of the repository alike:
//   1. a prebuilt binary for this platform (prebuilds/<platform>-<arch>/) or an addon already built
//      into build/Release/ loads: nothing to do (the consumer needs no build tools);
//   2. else, when cmake-js and node-addon-api can be found (a clone has them as devDependencies; a
//      consumer installs them beside the package, as optional peer dependencies), build from source
//      with `cmake-js compile`; a failed build fails the install;
//   3. else, print the one command that builds from source and exit 0: the install succeeds, and
//      importing the package throws an error with the same command (lib/native.ts).
// `npm install --build-from-source` (npm_config_build_from_source=true) skips step 1.
'use strict'
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
// The command printed here and in lib/native.ts's error (the README's "Install" section says the same).
const BUILD_COMMAND = 'npm install cmake-js node-addon-api && npm rebuild reward-kernels'

function loads() {
  try {
    require('node-gyp-build')(root)
    return true
  } catch {
    return false
  }
}

function resolve(id) {
  try {
    return require.resolve(id, { paths: [root] })
  } catch {
    return null
  }
}

if (process.env.npm_config_build_from_source !== 'true' && loads()) process.exit(0)

const cmakeJs = resolve('cmake-js/bin/cmake-js')
const addonApi = resolve('node-addon-api')
if (cmakeJs && addonApi) {
  const r = spawnSync(process.execPath, [cmakeJs, 'compile'], { stdio: 'inherit', cwd: root })
  process.exit(r.status === null ? 1 : r.status)
}

const missing = [cmakeJs ? null : 'cmake-js', addonApi ? null : 'node-addon-api'].filter(Boolean)
console.warn(
  `reward-kernels: no prebuilt binary for ${process.platform}-${process.arch} and no build tools ` +
    `(${missing.join(' and ')} not installed), so nothing was built. To build from source, install ` +
    `CMake >= 3.18 and a C++17 compiler, then run: ${BUILD_COMMAND}`,
)
