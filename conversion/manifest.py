"""`<repo>/<model>/manifest.json`: what a conversion did, as JSON.

Keys: model, source, task, inputs, outputs (name, task, declared dims), gate, calibration,
validation_samples, export (max deviation, tracer warnings, dynamic axes proven), optimization,
variants (per variant: served_as, size_bytes, metrics per output, judged_against, passed,
reasons, not_served, kept_fp32, latency_ms), int8_selected, int8_search, latency_setup, served,
tensorrt (status, profile: read back by `conversion.tensorrt`), measured_on.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

from conversion import variants

if TYPE_CHECKING:
    from conversion.pipeline import Conversion, Report


def _calibration(conversion: Conversion) -> dict:
    q = conversion.settings.quantization
    transformer = conversion.settings.transformer is not None
    op_types = variants.static_op_types(q.op_types, transformer)
    return {
        # static INT8: the graph it quantizes (optimize.Optimized) and which op types
        "static_source": "unfused export (ORT BASIC)" if transformer else "optimized base",
        "static_op_types": list(op_types) if op_types else "all",
        "method": q.calibration_method,
        "samples": len(conversion.calibration),
        "batch_size": q.calibration_batch_size,
        "per_channel": q.per_channel,
        "static_fp32_layers": "first and last" if q.keep_first_last else "none",
        "keep_fp32": list(q.keep_fp32),
        "search_budget_s": q.search_budget_s,
    }


def _export(report: Report) -> dict:
    exported = report.exported
    return {
        "max_deviation": exported.max_deviation,
        "tracer_warnings": exported.tracer_warnings,
        "dynamic_axes_proven": exported.axes_proven,
    }


def write_manifest(conversion: Conversion, report: Report, tensorrt_status: str) -> None:
    """Write `report.manifest` (overwrites it)."""
    settings = conversion.settings
    exported = report.exported
    manifest = {
        "model": conversion.name,
        "source": conversion.describe_source(),
        "task": conversion.task,
        "inputs": [
            {"name": s.name, "dtype": s.dtype, "dims": list(s.dims)} for s in exported.inputs
        ],
        "outputs": [
            {"name": o.name, "task": o.task, "dims": list(o.dims) if o.dims else None}
            for o in exported.outputs
        ],
        "gate": asdict(settings.gate),
        "calibration": _calibration(conversion),
        "validation_samples": len(conversion.validation),
        "export": _export(report),
        "optimization": report.optimization.as_dict(),
        "variants": {k: r.as_dict() for k, r in report.results.items()},
        "int8_selected": report.int8_selected,
        "int8_search": [s.as_dict() for s in report.searches],
        "latency_setup": {
            "what": "median ms per batch in ONNX Runtime (CPU provider, ENABLE_ALL online, "
            "default threads); OpenVINO variants in OpenVINO Runtime (CPU, PERFORMANCE_HINT "
            "LATENCY, default threads, the precision their config gives)",
            "row_shape": {
                n: list(a.shape[1:]) for n, a in conversion.validation.batches[0].items()
            },
            "batch_sizes": list(settings.latency.batch_sizes),
            "noise_margin": settings.latency.noise_margin,
            "serve_slower": settings.latency.serve_slower,
        },
        "served": report.served,
        "tensorrt": {
            "status": tensorrt_status,
            "profile": {
                "batch": list(settings.tensorrt.batch),
                **{k: list(v) for k, v in settings.tensorrt.other.items()},
            },
        },
        "measured_on": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    report.manifest.write_text(json.dumps(manifest, indent=2) + "\n")
