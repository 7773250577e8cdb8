"""`python -m benchmarks gpu` (`make bench-gpu`): the demo models on a CUDA GPU.

Standalone on purpose: needs only torch and numpy (transformers, sklearn when present). Of the
project it imports only `conversion.digits` (the digits CNN, torch and numpy alone), never
tritonclient, pytriton or modules that pin numpy<2, so it runs on a bare GPU host with
Python 3.12 / torch 2.11+cu130 / numpy 2.

Sections (each guarded: a failing one is recorded and the rest still run; the JSON is rewritten
after every measurement, so an interrupted run keeps what it had):
  1. environment      torch / CUDA / device
  2. digits CNN       FP32, FP16 (.half()), INT8 (see its note) x batch sizes
  3. MiniLM-L6        BertModel with MiniLM's config (6 layers, hidden 384, 12 heads, intermediate
                      1536, vocab 30522), RANDOM weights: the weights are not shipped with the
                      repo; speed does not depend on their values. FP32 / FP16 / INT8 (W8A8
                      dynamic, torch._int_mm on the Linear layers) x batch x sequence length.
  4. serving          the stack's batching policy on the GPU: an in-process asyncio dynamic
                      batcher (max batch, max queue delay, one model thread, like one Triton
                      instance) against one-request-per-forward, at several concurrencies.
                      Triton itself is not installed on that host, so this is the closest measure.
Writes gpu.json, gpu.md and hardware.json (schema bench-hardware/1, importable by
`python -m benchmarks run --import <dir>` and `python -m benchmarks rank`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = "bench-hardware/1"
MINILM = dict(
    vocab_size=30522,
    hidden_size=384,
    num_hidden_layers=6,
    num_attention_heads=12,
    intermediate_size=1536,
    max_position_embeddings=512,
    type_vocab_size=2,
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Report:
    """Collects sections; rewrites gpu.json + gpu.md + hardware.json after every change."""

    def __init__(self, out: Path, args) -> None:
        self.out = out
        self.out.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.data = {
            "schema": "bench-gpu/1",
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "status": "running",
            "environment": {},
            "model_only": [],
            "serving": [],
            "notes": [],
            "errors": [],
            "skipped": [],
        }
        self.slo = args.slo_p99_ms

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def add(self, key: str, row: dict) -> None:
        self.data[key].append(row)
        self.save()

    def save(self) -> None:
        self.data["elapsed_s"] = round(self.elapsed(), 1)
        (self.out / "gpu.json").write_text(json.dumps(self.data, indent=2))
        (self.out / "hardware.json").write_text(json.dumps(self.hardware_document(), indent=2))
        (self.out / "gpu.md").write_text(self.markdown())

    def hardware_document(self) -> dict:
        env = self.data["environment"]
        device = env.get("device_name")
        hardware = (
            {"id": device, "kind": "gpu", "description": f"{device} (torch {env.get('torch')})"}
            if device
            else {"id": "none", "kind": "none", "description": "no CUDA GPU"}
        )
        results = []
        best: dict[tuple, dict] = {}
        for row in self.data["model_only"]:
            if row.get("ms_per_batch") and row["ms_per_batch"] <= self.slo:
                key = (row["model"], row["precision"])
                if key not in best or row["samples_per_s"] > best[key]["samples_per_s"]:
                    best[key] = row
        for (model, precision), row in sorted(best.items()):
            results.append(
                {
                    "model": model,
                    "variant": precision.lower(),
                    "path": f"model only, torch CUDA eager, batch {row['batch']}"
                    + (f", {row['seq_len']} tokens" if row.get("seq_len") else ""),
                    "throughput": row["samples_per_s"],
                    "p99_ms": row.get("p99_ms", row["ms_per_batch"]),
                    "note": "batch latency stands in for request latency (whole batch answered at once)",
                }
            )
        served = [
            r
            for r in self.data["serving"]
            if r.get("p99_ms") is not None and r["p99_ms"] <= self.slo
        ]
        for mode in dict.fromkeys(r["mode"] for r in served):
            row = max((r for r in served if r["mode"] == mode), key=lambda r: r["throughput"])
            results.append(
                {
                    "model": row["model"],
                    "variant": f"{row['precision'].lower()} {mode}",
                    "path": f"served in-process ({mode}), concurrency {row['concurrency']}",
                    "throughput": row["throughput"],
                    "p99_ms": row["p99_ms"],
                }
            )
        return {"schema": SCHEMA, "hardware": hardware, "slo_p99_ms": self.slo, "results": results}

    def markdown(self) -> str:
        d, env = self.data, self.data["environment"]
        lines = [
            f"# GPU benchmark ({d['status']})",
            "",
            f"- started {d['started']}, elapsed {d.get('elapsed_s')} s",
            f"- device: {env.get('device_name') or 'NO CUDA GPU'}; torch {env.get('torch')}, "
            f"CUDA {env.get('cuda')}, Python {env.get('python')}",
            "",
        ]
        if not env.get("cuda_available"):
            lines += [
                "**No CUDA GPU was found**: nothing was measured on a GPU. "
                + (env.get("reason") or ""),
                "",
            ]
        if d["notes"]:
            lines += ["## Notes", ""] + [f"- {n}" for n in d["notes"]] + [""]
        if d["model_only"]:
            lines += [
                "## Model only (torch eager on the device)",
                "",
                "| model | precision | batch | tokens | ms / batch (median) | p99 ms | samples/s | vs FP32 | agreement |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for r in d["model_only"]:
                lines.append(
                    f"| {r['model']} | {r['precision']} | {r['batch']} | {r.get('seq_len') or ''} | "
                    f"{_f(r.get('ms_per_batch'), 3)} | {_f(r.get('p99_ms'), 3)} | "
                    f"{_f(r.get('samples_per_s'), 0)} | {_f(r.get('speedup_vs_fp32'), 2)} | "
                    f"{r.get('agreement', '')} |"
                )
            lines.append("")
        if d["serving"]:
            lines += [
                "## Serving on the device (in-process dynamic batcher vs one request per forward)",
                "",
                "| model | precision | mode | concurrency | req/s | p50 ms | p99 ms | avg batch |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for r in d["serving"]:
                lines.append(
                    f"| {r['model']} | {r['precision']} | {r['mode']} | {r['concurrency']} | "
                    f"{_f(r['throughput'], 0)} | {_f(r['p50_ms'], 2)} | {_f(r['p99_ms'], 2)} | "
                    f"{_f(r.get('avg_batch'), 1)} |"
                )
            lines.append("")
        if d["skipped"]:
            lines += ["## Not measured", ""] + [f"- {s}" for s in d["skipped"]] + [""]
        if d["errors"]:
            lines += (
                ["## Errors", ""] + [f"- {e['section']}: {e['error']}" for e in d["errors"]] + [""]
            )
        return "\n".join(lines)


def _f(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:,.{digits}f}"


def guarded(report: Report, section: str, budget_s: float, call) -> None:
    if report.elapsed() > budget_s:
        report.data["skipped"].append(f"{section}: time budget of {budget_s:.0f} s spent")
        report.save()
        log(f"skip {section}: budget spent")
        return
    log(f"section {section}")
    try:
        call()
    except Exception as error:  # keep the other sections
        log(f"{section} failed: {error}")
        report.data["errors"].append(
            {
                "section": section,
                "error": f"{type(error).__name__}: {error}",
                "trace": traceback.format_exc()[-1500:],
            }
        )
    report.save()


# ---------------------------------------------------------------------- timing
def time_call(torch, device, call, min_time_s: float, max_runs: int = 500) -> dict:
    """Median and p99 wall time per call, synchronizing the device around each call."""
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        call()
    sync()
    times = []
    started = time.perf_counter()
    while (len(times) < 5 or time.perf_counter() - started < min_time_s) and len(times) < max_runs:
        t = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - t)
    times.sort()
    p99 = times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)]
    return {
        "ms_per_batch": statistics.median(times) * 1000,
        "p99_ms": p99 * 1000,
        "runs": len(times),
    }


# ---------------------------------------------------------------------- models
def digits_model(torch, report: Report):
    """The digits CNN of conversion/digits.py, trained here when sklearn is present."""
    from conversion.digits import DigitsCNN, accuracy, load_data, train

    torch.manual_seed(0)
    try:
        data = load_data()
    except ImportError:
        report.data["notes"].append(
            "digits CNN: sklearn missing, random weights and random inputs "
            "(speed does not depend on the values)"
        )
        return DigitsCNN().eval(), torch.rand(1797, 1, 8, 8)
    model = train(data, epochs=15)
    with torch.no_grad():
        held_out = accuracy(model(torch.from_numpy(data.test_x)).numpy(), data.test_y)
    report.data["notes"].append(
        f"digits CNN trained here on sklearn load_digits (15 epochs, "
        f"held-out accuracy {held_out:.3f}); inputs are real digits"
    )
    images = torch.cat([torch.from_numpy(data.train_x), torch.from_numpy(data.test_x)])
    return model, images


class Int8Linear:
    """W8A8 dynamic: INT8 weights per output channel, activations per row, torch._int_mm (INT32
    accumulate) on CUDA; the result is rescaled to the activation dtype."""

    @staticmethod
    def wrap(torch, linear):
        nn = torch.nn

        class _Int8Linear(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                w = linear.weight.detach().float()
                scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127.0
                self.register_buffer(
                    "wq_t",
                    (w / scale[:, None]).round().clamp(-127, 127).to(torch.int8).t().contiguous(),
                )
                self.register_buffer("w_scale", scale)
                self.bias = linear.bias

            def forward(self, x):
                shape = x.shape
                x2 = x.reshape(-1, shape[-1])
                rows = x2.shape[0]
                if rows <= 16:  # _int_mm needs more than 16 rows
                    x2 = torch.nn.functional.pad(x2, (0, 0, 0, 17 - rows))
                x_scale = x2.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-8) / 127.0
                xq = (x2.float() / x_scale).round().clamp(-127, 127).to(torch.int8)
                y = torch._int_mm(xq, self.wq_t).float() * x_scale * self.w_scale[None]
                y = y[:rows]
                if self.bias is not None:
                    y = y + self.bias.float()
                return y.to(x.dtype).reshape(*shape[:-1], -1)

        return _Int8Linear()


def quantize_linears(torch, module):
    for name, child in list(module.named_children()):
        if (
            isinstance(child, torch.nn.Linear)
            and child.in_features % 8 == 0
            and child.out_features % 8 == 0
        ):
            setattr(module, name, Int8Linear.wrap(torch, child))
        else:
            quantize_linears(torch, child)
    return module


def minilm_model(torch):
    from transformers import BertConfig, BertModel

    config = BertConfig(**MINILM)
    torch.manual_seed(0)
    try:
        bert = BertModel(config, add_pooling_layer=False)
    except TypeError:
        bert = BertModel(config)
    nn = torch.nn

    class Encoder(nn.Module):  # BertModel + mean pooling + L2 norm, as the served model
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, ids, mask):
            hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-6)
            return nn.functional.normalize(pooled.float(), dim=-1)

    return Encoder().eval()


# ---------------------------------------------------------------------- sections
def environment(torch, report: Report, device) -> None:
    env = report.data["environment"]
    env.update(
        {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cuda_available": device.type == "cuda",
            "host": platform.node(),
            "cpu_cores": os.cpu_count(),
        }
    )
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            {
                "device_name": torch.cuda.get_device_name(device),
                "capability": f"{props.major}.{props.minor}",
                "memory_gib": round(props.total_memory / 2**30, 1),
                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            }
        )


def bench_digits(torch, report: Report, device, batches, min_time_s) -> None:
    model, images = digits_model(torch, report)
    model = model.to(device)
    fp32_rate: dict[int, float] = {}
    with torch.inference_mode():
        reference = model(images[:256].to(device)).argmax(1)
        for precision in ("FP32", "FP16"):
            m = model if precision == "FP32" else _half_copy(torch, model)
            for batch in batches:
                x = images[torch.arange(batch) % len(images)].to(device)
                x = x if precision == "FP32" else x.half()
                row = time_call(torch, device, lambda m=m, x=x: m(x), min_time_s)
                row.update(
                    {
                        "model": "digits",
                        "precision": precision,
                        "batch": batch,
                        "samples_per_s": batch / row["ms_per_batch"] * 1000,
                    }
                )
                if precision == "FP32":
                    fp32_rate[batch] = row["samples_per_s"]
                else:
                    row["speedup_vs_fp32"] = row["samples_per_s"] / fp32_rate[batch]
                    agree = (
                        (m(images[:256].to(device).half()).argmax(1) == reference)
                        .float()
                        .mean()
                        .item()
                    )
                    row["agreement"] = f"top-1 agrees with FP32 on {agree:.1%} of 256 digits"
                report.add("model_only", row)
                log(f"digits {precision} b{batch}: {row['samples_per_s']:,.0f}/s")
    report.data["skipped"].append(
        "digits INT8: PyTorch eager has no INT8 convolution kernels on CUDA (cuDNN INT8 conv is "
        "reached through TensorRT or torch.ao backends for CPU only); the CNN's time is in its "
        "convolutions, so INT8 for it needs TensorRT, which this host does not have"
    )


def _half_copy(torch, model):
    import copy

    return copy.deepcopy(model).half()


def minilm_inputs(torch, batch: int, seq_len: int, device):
    g = torch.Generator().manual_seed(batch * 1000 + seq_len)
    ids = torch.randint(1000, 30000, (batch, seq_len), generator=g)
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    lengths = torch.randint(max(2, seq_len // 2), seq_len + 1, (batch,), generator=g)
    mask[torch.arange(seq_len)[None, :] >= lengths[:, None]] = 0
    return ids.to(device), mask.to(device)


def bench_minilm(torch, report: Report, device, batches, seq_lens, min_time_s, int8: bool) -> None:
    fp32 = minilm_model(torch).to(device)
    report.data["notes"].append(
        "MiniLM: BertModel with all-MiniLM-L6-v2's config (6 layers, hidden 384, 12 heads, "
        "intermediate 1536, vocab 30522) and RANDOM weights (the real weights do not travel with "
        "the repo); timings are those of the real model, agreement numbers only compare variants"
    )
    variants = {"FP32": fp32, "FP16": _half_copy(torch, fp32)}
    if int8:
        try:
            q = quantize_linears(torch, _half_copy(torch, fp32))
            ids, mask = minilm_inputs(torch, 2, 16, device)
            with torch.inference_mode():
                q(ids, mask)
            variants["INT8"] = q
            report.data["notes"].append(
                "MiniLM INT8: W8A8 dynamic quantization of every Linear (torch._int_mm, INT32 "
                "accumulate), attention/LayerNorm in FP16; no TensorRT on this host"
            )
        except Exception as error:
            report.data["skipped"].append(
                f"MiniLM INT8: torch._int_mm path unavailable here "
                f"({type(error).__name__}: {str(error)[:160]})"
            )
    fp32_rate: dict[tuple, float] = {}
    with torch.inference_mode():
        for seq_len in seq_lens:
            for batch in batches:
                ids, mask = minilm_inputs(torch, batch, seq_len, device)
                reference = None
                for precision, model in variants.items():
                    try:
                        row = time_call(
                            torch,
                            device,
                            lambda model=model, ids=ids, mask=mask: model(ids, mask),
                            min_time_s,
                        )
                    except Exception as error:  # OOM, an INT8 shape the kernel refuses, ...
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                        report.data["skipped"].append(
                            f"MiniLM {precision} b{batch} s{seq_len}: {type(error).__name__}: "
                            f"{str(error)[:160]}"
                        )
                        report.save()
                        continue
                    row.update(
                        {
                            "model": "minilm",
                            "precision": precision,
                            "batch": batch,
                            "seq_len": seq_len,
                            "samples_per_s": batch / row["ms_per_batch"] * 1000,
                        }
                    )
                    out = model(ids, mask).float()
                    if precision == "FP32" or reference is None:
                        reference = out
                        fp32_rate[(batch, seq_len)] = row["samples_per_s"]
                    else:
                        base = fp32_rate.get((batch, seq_len))
                        row["speedup_vs_fp32"] = row["samples_per_s"] / base if base else None
                        cos = torch.nn.functional.cosine_similarity(out, reference, dim=-1)
                        row["agreement"] = (
                            f"cosine vs FP32 mean {cos.mean().item():.4f} min {cos.min().item():.4f}"
                        )
                    report.add("model_only", row)
                    log(f"minilm {precision} b{batch} s{seq_len}: {row['samples_per_s']:,.0f}/s")


def bench_serving(
    torch, report: Report, device, concurrencies, duration_s, max_batch, delay_us
) -> None:
    """The stack's policy on the device: dynamic batching in-process vs one request per forward."""
    model = minilm_model(torch).to(device)
    precision = "FP16" if device.type == "cuda" else "FP32"
    if precision == "FP16":
        model = model.half()
    seq_len = 16
    for mode in ("one request per forward", "dynamic batching"):
        for concurrency in concurrencies:
            row = asyncio.run(
                _serve(
                    torch,
                    model,
                    device,
                    mode,
                    concurrency,
                    duration_s,
                    max_batch,
                    delay_us,
                    seq_len,
                )
            )
            row.update(
                {
                    "model": "minilm",
                    "precision": precision,
                    "mode": mode,
                    "concurrency": concurrency,
                    "seq_len": seq_len,
                    "max_batch": max_batch,
                    "max_queue_delay_us": delay_us,
                }
            )
            report.add("serving", row)
            log(
                f"serving {mode} c{concurrency}: {row['throughput']:,.0f}/s p99 {row['p99_ms']:.2f} ms"
            )
    report.data["notes"].append(
        f"serving: asyncio clients in the same process, MiniLM {precision} at {seq_len} tokens; the "
        f"batcher gathers up to {max_batch} requests or {delay_us} us, one model thread (like one "
        "Triton instance). No Triton, gateway or network on this host: per-request costs of the "
        "real stack (gRPC, python backend, Redis) are not included"
    )


async def _serve(
    torch, model, device, mode, concurrency, duration_s, max_batch, delay_us, seq_len
) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    loop = asyncio.get_running_loop()
    worker = ThreadPoolExecutor(max_workers=1)
    queue: asyncio.Queue = asyncio.Queue()
    pool_ids, pool_mask = minilm_inputs(torch, 512, seq_len, torch.device("cpu"))
    batches: list[int] = []

    def forward(ids, mask):
        with torch.inference_mode():
            out = model(ids.to(device, non_blocking=True), mask.to(device, non_blocking=True))
            return out.float().cpu()

    async def batcher() -> None:
        while True:
            first = await queue.get()
            if first is None:
                return
            items = [first]
            deadline = loop.time() + delay_us / 1e6
            while len(items) < max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    break
                if item is None:
                    queue.put_nowait(None)
                    break
                items.append(item)
            ids = torch.stack([i[0] for i in items])
            mask = torch.stack([i[1] for i in items])
            batches.append(len(items))
            out = await loop.run_in_executor(worker, forward, ids, mask)
            for row, (_, _, future) in zip(out, items, strict=False):
                future.set_result(row)

    latencies: list[float] = []
    start = time.perf_counter()
    warm_until, stop_at = (
        start + min(1.0, duration_s / 3),
        start + min(1.0, duration_s / 3) + duration_s,
    )

    async def client(k: int) -> None:
        n = k
        while time.perf_counter() < stop_at:
            ids, mask = pool_ids[n % 512], pool_mask[n % 512]
            n += concurrency
            sent = time.perf_counter()
            if mode == "dynamic batching":
                future = loop.create_future()
                queue.put_nowait((ids, mask, future))
                await future
            else:
                batches.append(1)
                await loop.run_in_executor(worker, forward, ids[None], mask[None])
            if sent >= warm_until:
                latencies.append(time.perf_counter() - sent)

    task = asyncio.create_task(batcher()) if mode == "dynamic batching" else None
    await asyncio.gather(*(client(k) for k in range(concurrency)))
    if task:
        queue.put_nowait(None)
        await task
    worker.shutdown()
    elapsed = time.perf_counter() - warm_until
    latencies.sort()

    def pick(q):
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
            if latencies
            else None
        )

    return {
        "throughput": len(latencies) / elapsed,
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "requests": len(latencies),
        "avg_batch": sum(batches) / len(batches) if batches else None,
    }


# ---------------------------------------------------------------------- main
def parse(argv: list[str]):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks gpu",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="folder (default reports/gpu-<UTC time>)"
    )
    parser.add_argument(
        "--budget-s", type=float, default=540, help="skip sections after this (default 540)"
    )
    parser.add_argument("--slo-p99-ms", type=float, default=100.0)
    parser.add_argument(
        "--quick", action="store_true", help="few small batches, short timings (smoke)"
    )
    parser.add_argument(
        "--allow-cpu",
        action="store_true",
        help="without a GPU, run the same code on the CPU (tiny sizes; a code check, "
        "not a GPU measurement)",
    )
    parser.add_argument("--sections", default="digits,minilm,serving")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    out = args.out or Path("reports") / f"gpu-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    report = Report(out, args)
    try:
        import torch
    except ImportError as error:
        report.data["environment"] = {
            "cuda_available": False,
            "python": platform.python_version(),
            "reason": f"torch is not installed ({error})",
        }
        report.data["status"] = "no CUDA GPU"
        report.save()
        log(f"no CUDA GPU: torch missing; report in {out}")
        return 0
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    environment(torch, report, device)
    if not cuda:
        reason = "torch.cuda.is_available() is False" + (
            f" (torch built for CUDA {torch.version.cuda})"
            if torch.version.cuda
            else " (a CPU-only torch build)"
        )
        report.data["environment"]["reason"] = reason
        if not args.allow_cpu:
            report.data["status"] = "no CUDA GPU"
            report.data["skipped"].append(f"every GPU section: no CUDA GPU ({reason})")
            report.save()
            log(f"no CUDA GPU ({reason}): nothing measured; report in {out}")
            return 0
        report.data["notes"].append(
            "--allow-cpu: the GPU code ran on the CPU at tiny sizes as a "
            "code check; these are NOT GPU numbers"
        )
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    quick = args.quick or not cuda
    min_time = 0.05 if quick else 0.4
    sections = set(args.sections.split(","))
    log(f"device: {report.data['environment'].get('device_name') or 'cpu'}; out: {out}")
    if "digits" in sections:
        guarded(
            report,
            "digits",
            args.budget_s,
            lambda: bench_digits(
                torch,
                report,
                device,
                [1, 32] if quick else [1, 8, 32, 128, 512, 2048, 8192],
                min_time,
            ),
        )
    if "minilm" in sections:
        guarded(
            report,
            "minilm",
            args.budget_s,
            lambda: bench_minilm(
                torch,
                report,
                device,
                [1, 8] if quick else [1, 8, 32, 128, 256],
                [16] if quick else [16, 128],
                min_time,
                int8=True,
            ),
        )
    if "serving" in sections:
        guarded(
            report,
            "serving",
            args.budget_s,
            lambda: bench_serving(
                torch,
                report,
                device,
                [1, 8] if quick else [1, 8, 32, 128, 256],
                0.5 if quick else 3.0,
                64,
                1000,
            ),
        )
    report.data["status"] = "done" if cuda else "no CUDA GPU (code check on CPU)"
    report.data["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    report.save()
    log(f"report: {out / 'gpu.md'}  import: python -m benchmarks rank {out / 'hardware.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
