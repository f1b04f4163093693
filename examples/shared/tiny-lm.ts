// A tiny autoregressive language model in TensorFlow.js, shared by the GRPO and DPO examples:
// logits_t = tanh(E_prompt[p] + E_tok[x_{t-1}] + E_pos[t]) W + b, with x_{-1} = BOS.
// Seeded initialisation and a seeded sampler, so every run prints the same numbers.

import * as tf from '@tensorflow/tfjs';

/** mulberry32: a deterministic uniform [0, 1) generator. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TinyLmConfig {
  vocab: number;
  seqLen: number;
  prompts: number;
  hidden: number;
  seed: number;
}

export class TinyLm {
  readonly cfg: TinyLmConfig;
  readonly bos: number;
  readonly vars: tf.Variable[];
  private readonly ePrompt: tf.Variable;
  private readonly eTok: tf.Variable;
  private readonly ePos: tf.Variable;
  private readonly w: tf.Variable;
  private readonly b: tf.Variable;

  constructor(cfg: TinyLmConfig, from?: TinyLm) {
    this.cfg = cfg;
    this.bos = cfg.vocab;
    const { vocab: v, seqLen: t, prompts: p, hidden: h, seed } = cfg;
    const init = (shape: number[], sd: number, k: number, src?: tf.Variable) =>
      tf.variable(src ? src.clone() : tf.randomNormal(shape, 0, sd, 'float32', seed * 16 + k));
    this.ePrompt = init([p, h], 0.5, 1, from?.ePrompt);
    this.eTok = init([v + 1, h], 0.5, 2, from?.eTok);
    this.ePos = init([t, h], 0.5, 3, from?.ePos);
    this.w = init([h, v], 0.3, 4, from?.w);
    this.b = tf.variable(from ? from.b.clone() : tf.zeros([v]));
    this.vars = [this.ePrompt, this.eTok, this.ePos, this.w, this.b];
  }

  /** A frozen copy (a reference model). */
  copy(): TinyLm {
    return new TinyLm(this.cfg, this);
  }

  /** Logits [B, T, V] for prompts [B] and the previous tokens [B, T] (BOS first). */
  logits(prompts: Int32Array, prev: Int32Array): tf.Tensor3D {
    const bsz = prompts.length;
    const { seqLen: t, hidden: h, vocab: v } = this.cfg;
    return tf.tidy(() => {
      const ep = tf.reshape(tf.gather(this.ePrompt, tf.tensor1d(prompts, 'int32')), [bsz, 1, h]);
      const et = tf.gather(this.eTok, tf.tensor2d(prev, [bsz, t], 'int32'));
      const hid = tf.tanh(tf.add(tf.add(ep, et), this.ePos));
      return tf.reshape(tf.add(tf.matMul(tf.reshape(hid, [bsz * t, h]), this.w), this.b), [bsz, t, v]);
    });
  }

  /** Samples completions [B, T] token by token (seeded), with their previous-token inputs. */
  sample(prompts: Int32Array, next: () => number): { tokens: Int32Array; prev: Int32Array } {
    const bsz = prompts.length;
    const { seqLen: t, vocab: v, hidden: h } = this.cfg;
    const tokens = new Int32Array(bsz * t);
    const prev = new Int32Array(bsz * t);
    let last = new Int32Array(bsz).fill(this.bos);
    for (let s = 0; s < t; s++) {
      for (let i = 0; i < bsz; i++) prev[i * t + s] = last[i]!;
      const probs = tf.tidy(() => {
        const ep = tf.gather(this.ePrompt, tf.tensor1d(prompts, 'int32'));
        const et = tf.gather(this.eTok, tf.tensor1d(last, 'int32'));
        const pos = tf.reshape(tf.slice(this.ePos, [s, 0], [1, h]), [1, h]);
        const z = tf.add(tf.matMul(tf.tanh(tf.add(tf.add(ep, et), pos)), this.w), this.b);
        return tf.softmax(z).dataSync();
      });
      const cur = new Int32Array(bsz);
      for (let i = 0; i < bsz; i++) {
        let u = next();
        let k = 0;
        while (k < v - 1 && u >= probs[i * v + k]!) u -= probs[i * v + k++]!;
        cur[i] = k;
        tokens[i * t + s] = k;
      }
      last = cur;
    }
    return { tokens, prev };
  }
}

/** "mean ± sd"-free formatting of a number to 3 decimals. */
export const f3 = (x: number) => x.toFixed(3);
