#!/usr/bin/env python3
"""PyTorch baselines for the token log-prob + entropy pass, on the GPU that rk_driver cuda-bench uses.

Run by scripts/gpu-check.sh (issue 6). Times, with CUDA events (median of --reps after warm-up):
  - eager:          log_softmax(logits.float()) + gather + entropy  (what TRL/verl do without a fused kernel)
  - torch.compile:  the same function under torch.compile (Inductor/Triton), compile time reported apart
on bf16 logits of shape N x V (default 8192 x 151936). GB/s counts the bytes of the logits read once,
the same accounting as rk_driver cuda-bench. A torch.compile failure is caught and reported, never fatal.
Prints 'RESULT|<name>|<ms>|<GB/s>' lines for the combined table and writes JSON to --out when given.
"""
import argparse
import json
import math
import sys
import time
import traceback


def logprobs_entropy(logits, targets):
    lp = torch.log_softmax(logits.float(), dim=-1)
    logp = lp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = -(lp.exp() * lp).sum(dim=-1)
    return logp, entropy


def time_cuda(fn, reps, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(reps):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=8192)
    ap.add_argument("--vocab", type=int, default=151936)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--out", default="")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()

    report = {"rows": args.rows, "vocab": args.vocab, "dtype": "bfloat16", "results": []}
    if not torch.cuda.is_available():
        print("torch: no CUDA device visible; nothing to time")
        report["error"] = "no CUDA device"
        write(args.out, report)
        return 0
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(dev)
    report.update(device=name, torch=torch.__version__)
    try:
        import triton  # noqa: F401

        report["triton"] = triton.__version__
    except Exception:  # noqa: BLE001
        report["triton"] = None
    print(f"torch {torch.__version__} on {name}; triton {report['triton']}; "
          f"bf16 logits {args.rows} x {args.vocab}")
    g = torch.Generator(device=dev).manual_seed(0)
    logits = (torch.randn(args.rows, args.vocab, device=dev, generator=g) * 2.0).to(torch.bfloat16)
    targets = torch.randint(0, args.vocab, (args.rows,), device=dev, generator=g)
    nbytes = logits.numel() * logits.element_size()

    def record(label, ms, extra=None):
        gbs = nbytes / ms / 1e6
        print(f"  {label:<48} {ms:9.3f} ms {gbs:9.1f} GB/s")
        print(f"RESULT|{label}|{ms:.4f}|{gbs:.1f}")
        entry = {"name": label, "ms": ms, "gbps": gbs}
        if extra:
            entry.update(extra)
        report["results"].append(entry)
        sys.stdout.flush()

    with torch.no_grad():
        ref_logp, ref_ent = logprobs_entropy(logits, targets)
        ms = time_cuda(lambda: logprobs_entropy(logits, targets), args.reps)
        record("torch eager log_softmax+gather+entropy bf16", ms,
               {"peak_gib": torch.cuda.max_memory_allocated() / 2**30})
        torch.cuda.empty_cache()

        if args.no_compile:
            report["compile_error"] = "skipped (--no-compile)"
        else:
            try:
                compiled = torch.compile(logprobs_entropy, dynamic=False)
                t0 = time.time()
                c_logp, c_ent = compiled(logits, targets)
                torch.cuda.synchronize()
                compile_s = time.time() - t0
                err = max((c_logp - ref_logp).abs().max().item(), (c_ent - ref_ent).abs().max().item())
                ms = time_cuda(lambda: compiled(logits, targets), args.reps)
                print(f"  torch.compile: first call {compile_s:.1f} s, max |diff| vs eager {err:.2e}")
                record("torch.compile log_softmax+gather+entropy bf16", ms,
                       {"compile_s": compile_s, "max_abs_diff_vs_eager": err})
            except Exception as exc:  # noqa: BLE001
                msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                print(f"  torch.compile FAILED: {msg}")
                traceback.print_exc(limit=3)
                print(f"RESULT|torch.compile log_softmax+gather+entropy bf16|FAILED|{msg}")
                report["compile_error"] = msg
        # A sanity figure for the whole comparison: the entropy of these logits.
        report["mean_entropy"] = float(ref_ent.mean().item())
        report["mean_logp"] = float(ref_logp.mean().item())
        if not (math.isfinite(report["mean_entropy"]) and report["mean_logp"] <= 0):
            print("  WARNING: eager results look wrong")
    write(args.out, report)
    return 0


def write(path, report):
    if path:
        with open(path, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        print(f"torch is not importable ({exc}); no PyTorch comparison")
        sys.exit(0)
    sys.exit(main())
