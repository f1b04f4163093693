// Types shared by several kernel families.

/** A token mask over padded (B, T) data: 1 = response token (Uint8Array) or per-token weights (Float32Array). */
export type TokenMask = Uint8Array | Float32Array;
