// AdaptiveEntropyCoef: TRL's adaptive entropy-coefficient controller (GRPOTrainer with
// use_adaptive_entropy, from Skywork-OR1), docs/policy.md#adaptiveentropycoef. A scalar controller:
// no kernel, no arrays beyond an optional (entropy, mask) reduction done in double in index order.
import { finiteIn, knownKeys, options as optionsObject, typedArray } from '../check.js';
import type { TokenMask } from '../types.js';

export interface AdaptiveEntropyCoefOptions {
  /** The initial coefficient (TRL entropy_coef). Default 0. */
  coef?: number;
  /** Target mean token entropy in nats (TRL entropy_target). Default 0.2. */
  target?: number;
  /** Step of each update (TRL entropy_coef_delta). Default 0.005. */
  delta?: number;
  /** Bounds of the coefficient (TRL entropy_coef_min / entropy_coef_max). Default 0 and 1. */
  min?: number;
  max?: number;
  /** The entropy measured at the last step, from a checkpoint. Default Infinity (no bonus until measured). */
  lastEntropy?: number;
}

export interface AdaptiveEntropyCoefState {
  /** The coefficient the next steps update (TRL entropy_coef). */
  coef: number;
  /** The mean entropy of the last window (TRL _last_world_entropy). */
  lastEntropy: number;
}

const KEYS = knownKeys('AdaptiveEntropyCoef', ['coef', 'target', 'delta', 'min', 'max', 'lastEntropy']);

/**
 * TRL's adaptive entropy coefficient. Per micro-batch, `accumulate` the entropy sum and token count of
 * the tokens the policy loss uses; the loss applies `appliedCoef` (the coefficient while the last
 * window's entropy is at or below the target, else 0); at each optimizer step, `step()` measures the
 * window's mean entropy, moves the coefficient by delta towards more bonus (entropy <= target) or less,
 * within [min, max], and starts a new window.
 *
 * @example
 * const ctl = new AdaptiveEntropyCoef({ coef: 0.001, target: 2.0 });
 * const { loss } = policyLoss(lp, old, adv, mask, { seqLen, entropy, entropyCoef: ctl.appliedCoef });
 * ctl.accumulateTokens(entropy, mask);
 * if (syncStep) ctl.step();
 */
export class AdaptiveEntropyCoef {
  readonly target: number;
  readonly delta: number;
  readonly min: number;
  readonly max: number;
  #coef: number;
  #last: number;
  #sum = 0;
  #count = 0;

  constructor(options?: AdaptiveEntropyCoefOptions) {
    const o = optionsObject<AdaptiveEntropyCoefOptions>(options, 'options', false, KEYS);
    this.target = o.target === undefined ? 0.2 : finiteIn(o.target, 'options.target', -Infinity, Infinity);
    this.delta = o.delta === undefined ? 0.005 : finiteIn(o.delta, 'options.delta', 0, Infinity);
    this.min = o.min === undefined ? 0 : finiteIn(o.min, 'options.min', -Infinity, Infinity);
    this.max = o.max === undefined ? 1 : finiteIn(o.max, 'options.max', -Infinity, Infinity);
    if (this.max < this.min) throw new RangeError(`options.max: expected a number >= options.min (${this.min}), received ${this.max}`);
    this.#coef = o.coef === undefined ? 0 : finiteIn(o.coef, 'options.coef', -Infinity, Infinity);
    if (o.lastEntropy === undefined) this.#last = Infinity;
    else if (typeof o.lastEntropy !== 'number' || Number.isNaN(o.lastEntropy)) {
      throw new TypeError(`options.lastEntropy: expected a number (not NaN), received ${String(o.lastEntropy)}`);
    } else this.#last = o.lastEntropy;
  }

  /** The coefficient to apply in this window: coef while the last window's entropy <= target, else 0. */
  get appliedCoef(): number {
    return this.#last <= this.target ? this.#coef : 0;
  }
  /** The controller's state, for a checkpoint (TRL saves entropy_coef and last_world_entropy). */
  get state(): AdaptiveEntropyCoefState {
    return { coef: this.#coef, lastEntropy: this.#last };
  }
  /** The current window's entropy sum and token count (all-reduce them across ranks before step()). */
  get window(): { entropySum: number; tokenCount: number } {
    return { entropySum: this.#sum, tokenCount: this.#count };
  }

  /** Adds one micro-batch: the sum of its token entropies and its token count (mask sum). */
  accumulate(entropySum: number, tokenCount: number): void {
    const s = finiteIn(entropySum, 'entropySum', -Infinity, Infinity);
    const c = finiteIn(tokenCount, 'tokenCount', 0, Infinity);
    this.#sum += s;
    this.#count += c;
  }

  /** Adds one micro-batch from its per-token entropies and mask (null: every token): sum m H, sum m in double. */
  accumulateTokens(entropy: Float32Array, mask: TokenMask | null): void {
    typedArray(entropy, 'entropy', Float32Array);
    if (mask !== null && !(mask instanceof Uint8Array) && !(mask instanceof Float32Array)) {
      throw new TypeError(`mask: expected a Uint8Array, a Float32Array of weights or null, received ${typeof mask}`);
    }
    if (mask !== null && mask.length !== entropy.length) {
      throw new RangeError(`mask: expected length ${entropy.length}, received length ${mask.length}`);
    }
    let s = 0, c = 0;
    for (let i = 0; i < entropy.length; i++) {
      const m = mask === null ? 1 : mask instanceof Uint8Array ? (mask[i] !== 0 ? 1 : 0) : mask[i];
      if (m === 0) continue;
      s += m * entropy[i];
      c += m;
    }
    this.accumulate(s, c);
  }

  /**
   * The optimizer-step boundary: the window's mean entropy sum / max(count, 1) (or the all-reduced
   * `window` given) updates the coefficient; returns the new state and starts a new window.
   */
  step(window?: { entropySum: number; tokenCount: number }): AdaptiveEntropyCoefState {
    let sum = this.#sum, count = this.#count;
    if (window !== undefined) {
      const w = optionsObject<{ entropySum: number; tokenCount: number }>(window, 'window', true, knownKeys('step', ['entropySum', 'tokenCount']));
      sum = finiteIn(w.entropySum, 'window.entropySum', -Infinity, Infinity);
      count = finiteIn(w.tokenCount, 'window.tokenCount', 0, Infinity);
    }
    const entropy = sum / Math.max(count, 1);
    this.#coef = entropy <= this.target ? Math.min(this.#coef + this.delta, this.max) : Math.max(this.#coef - this.delta, this.min);
    this.#last = entropy;
    this.#sum = 0;
    this.#count = 0;
    return this.state;
  }
}
