// A minimal ONNX ModelProto encoder for the benchmarks: enough protobuf to describe a small graph
// (typed inputs/outputs, nodes with int/float/ints attributes, int64/float initializers) and hand
// it to onnxruntime-node as bytes. No onnx Python package, no files.

export type OnnxElem = 'float' | 'float16' | 'bfloat16' | 'int32' | 'int64';
const ELEM: Record<OnnxElem, number> = { float: 1, int32: 6, int64: 7, float16: 10, bfloat16: 16 };

export interface OnnxValueInfo {
  name: string;
  elem: OnnxElem;
  /** numbers are fixed sizes, strings symbolic dimensions */
  shape: (number | string)[];
}

export type OnnxAttr = { i: number } | { f: number } | { ints: number[] };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, OnnxAttr>;
}

export interface OnnxInitializer {
  name: string;
  dims: number[];
  int64?: number[];
  float?: number[];
}

export interface OnnxGraph {
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  nodes: OnnxNode[];
  initializers?: OnnxInitializer[];
  opset?: number;
}

class Writer {
  private parts: number[] = [];
  varint(v: number | bigint): this {
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.parts.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.parts.push(Number(x));
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  int(field: number, v: number | bigint): this {
    return this.tag(field, 0).varint(v);
  }
  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2).varint(b.length);
    for (const x of b) this.parts.push(x);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  message(field: number, w: Writer): this {
    return this.bytes(field, w.finish());
  }
  float(field: number, f: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(new Float32Array([f]).buffer);
    for (const x of b) this.parts.push(x);
    return this;
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function valueInfo(v: OnnxValueInfo): Writer {
  const shape = new Writer();
  for (const d of v.shape) {
    const dim = new Writer();
    if (typeof d === 'number') dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensor = new Writer().int(1, ELEM[v.elem]).message(2, shape);
  const type = new Writer().message(1, tensor);
  return new Writer().string(1, v.name).message(2, type);
}

function attribute(name: string, a: OnnxAttr): Writer {
  const w = new Writer().string(1, name);
  if ('i' in a) return w.int(3, a.i).int(20, 2);
  if ('f' in a) return w.float(2, a.f).int(20, 1);
  for (const x of a.ints) w.int(8, x);
  return w.int(20, 7);
}

function initializer(t: OnnxInitializer): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  if (t.int64) {
    w.int(2, ELEM.int64).string(8, t.name);
    w.bytes(9, new Uint8Array(BigInt64Array.from(t.int64.map((x) => BigInt(x))).buffer));
  } else {
    w.int(2, ELEM.float).string(8, t.name);
    w.bytes(9, new Uint8Array(Float32Array.from(t.float ?? []).buffer));
  }
  return w;
}

/** Serialises a graph to ONNX ModelProto bytes (IR version 8, default opset 17). */
export function onnxModel(g: OnnxGraph): Uint8Array {
  const graph = new Writer();
  g.nodes.forEach((n, k) => {
    const node = new Writer();
    for (const i of n.inputs) node.string(1, i);
    for (const o of n.outputs) node.string(2, o);
    node.string(3, `n${k}`).string(4, n.op);
    for (const [name, a] of Object.entries(n.attrs ?? {})) node.message(5, attribute(name, a));
    graph.message(1, node);
  });
  graph.string(2, 'bench');
  for (const t of g.initializers ?? []) graph.message(5, initializer(t));
  for (const v of g.inputs) graph.message(11, valueInfo(v));
  for (const v of g.outputs) graph.message(12, valueInfo(v));
  const opset = new Writer().string(1, '').int(2, g.opset ?? 17);
  return new Writer().int(1, 8).string(2, 'reward-kernels-bench').message(7, graph).message(8, opset).finish();
}
