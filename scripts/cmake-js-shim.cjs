#!/usr/bin/env node
// prebuildify has no cmake-js backend: it calls `--node-gyp <this script> rebuild ...` and then
// copies build/Release/*.node into prebuilds/<platform>-<arch>/. We ignore node-gyp's flags and let
// cmake-js (which reads "binary.napi_versions" from package.json, so nothing is downloaded) rebuild.
'use strict'
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const cli = require.resolve('cmake-js/bin/cmake-js')
const args = [cli, 'rebuild', '--CDRK_CUDA=OFF']
if (process.argv.includes('--debug')) args.push('--debug')
const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: path.resolve(__dirname, '..') })
process.exit(r.status === null ? 1 : r.status)
