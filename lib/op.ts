// The op descriptor: one declaration per op from which the facade's validation of options, the
// packing of the native call, the sync / Async and host / device entry points and the typed native
// interface all come (lib/op/options.ts, lib/op/io.ts, lib/op/define.ts). The native layout of each
// op (its slots, packed parameters and scalar results, with the enum codes) is generated from the
// same descriptors into native/binding/layout.gen.h by scripts/gen-layout.ts, so the C++ decoding
// shared by the CPU and CUDA addons reads named offsets, never hand-counted indices (docs/design.md).
export * from './op/options.js';
export * from './op/io.js';
export * from './op/define.js';
export { describe, integer, knownKeys, knownKeysMoved, movedToArgument, renamedTo, type KnownKeys, options as optionsObject } from './check.js';
