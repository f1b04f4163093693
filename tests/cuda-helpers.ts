// Shared by the CUDA tests that upload many arrays per case.
import { cuda, DeviceArray } from '../lib/cuda.js';

/** Every DeviceArray made by `up` (f32, u8, i32, or bf16/f16 bits with `dtype`) or passed to `track` is freed by `freeAll`. */
export function uploader() {
  const made: DeviceArray[] = [];
  const up = (a: Float32Array | Uint8Array | Int32Array, dtype?: 'bf16' | 'f16'): DeviceArray => {
    const d = dtype ? cuda.upload(a as unknown as Uint16Array, { dtype }) : cuda.upload(a as Float32Array);
    made.push(d);
    return d;
  };
  const track = <T extends DeviceArray | undefined>(d: T): T => {
    if (d) made.push(d);
    return d;
  };
  const freeAll = () => made.forEach((d) => d.free());
  return { up, track, freeAll };
}
