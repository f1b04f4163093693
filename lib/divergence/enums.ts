// The option enums of the divergence family, in native code order (rk::DivergenceKind, rkcuda::DivergenceKind).
export type DivergenceKind = 'forward_kl' | 'reverse_kl' | 'jsd';

export const KINDS: readonly DivergenceKind[] = ['forward_kl', 'reverse_kl', 'jsd'];
