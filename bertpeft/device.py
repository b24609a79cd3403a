"""The one home of device facts: which accelerator, the precision rule, autocast, synchronisation, peak memory.

Precision: `auto` follows the hardware. On a CPU, bf16 autocast where the CPU multiplies bf16 natively (AMX or
AVX-512 BF16: measured several times faster than fp32 there) and fp32 elsewhere (on an AVX2-only CPU bf16 autocast
was measured 12x slower than fp32: benchmarks/results/); on CUDA, bf16 where the GPU computes it natively (Ampere and
later) and fp16 otherwise (a T4); fp32 on an Apple GPU. An explicit choice is checked against the device.
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any

from .config import ConfigError


def accelerator() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def default_profile() -> str:
    """The profile a notebook or command uses when none is named: bert-base (`paper`) where a GPU can train it in
    minutes, the small real model (`quick`) on a CPU or an Apple GPU."""
    return "paper" if accelerator() == "cuda" else "quick"


# The CPU features whose bf16 matrix products run natively, in the order they are preferred (torch's check for each).
CPU_BF16_FEATURES = (("amx_bf16", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported"))


def cpu_bf16_feature() -> str | None:
    """The instruction set with which this CPU multiplies bf16 matrices natively (`amx_bf16` or `avx512_bf16`), or
    None: torch's own check (the one its oneDNN kernels dispatch on) where torch has it, else Linux's CPU flags."""
    import torch

    cpu = getattr(torch, "cpu", None)
    if all(hasattr(cpu, check) for _, check in CPU_BF16_FEATURES):
        return next((feature for feature, check in CPU_BF16_FEATURES if getattr(cpu, check)()), None)
    try:
        flags = set(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return None
    return next((feature for feature, _ in CPU_BF16_FEATURES if feature in flags), None)


def auto_precision(device: str) -> tuple[str, str]:
    """What `auto` means on `device` ("cpu", "cuda" or "mps"), and why, in words a run prints."""
    if device == "cpu":
        feature = cpu_bf16_feature()
        if feature:
            return "bf16", f"this CPU multiplies bf16 natively ({feature})"
        return "fp32", "this CPU has no native bf16 (no amx_bf16 or avx512_bf16), where bf16 is slower than fp32"
    if device == "cuda":
        import torch

        if torch.cuda.is_bf16_supported(including_emulation=False):
            return "bf16", "this GPU computes bf16 natively"
        return "fp16", "this GPU has no native bf16 (e.g. a T4)"
    return "fp32", "fp32 on an Apple GPU"


def resolve_precision(precision: str, device: str | None = None) -> str:
    """`auto` -> `auto_precision(device)`; fp16 asked for on a CPU is refused with the fix."""
    device = device or accelerator()
    if precision == "auto":
        return auto_precision(device)[0]
    if precision == "fp16" and device == "cpu":
        raise ConfigError("precision fp16 needs a GPU; on a CPU use fp32 or bf16")
    return precision


def precision_words(precision: str, device: str | None = None) -> str:
    """The precision a run computes in, and why, for the line it prints at its start: "precision bf16 (auto: this
    CPU multiplies bf16 natively (amx_bf16))" or "precision fp32 (as asked)"."""
    device = device or accelerator()
    resolved = resolve_precision(precision, device)
    if precision == "auto":
        return f"precision {resolved} (auto: {auto_precision(device)[1]}; --precision overrides)"
    note = ""
    if resolved == "bf16" and device == "cpu" and not cpu_bf16_feature():
        note = ": this CPU has no native bf16, fp32 is faster here"
    return f"precision {resolved} (as asked{note})"


def autocast(device: str, precision: str):
    """Mixed-precision autocast for fp16/bf16 (as the Trainer's fp16=/bf16= do); nothing for fp32."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype={"fp16": torch.float16, "bf16": torch.bfloat16}[precision])


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so that a clock read afterwards times it."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def peak_memory_mb(device: str) -> float | None:
    """Peak memory of this process on `device` so far: CUDA's allocator peak, or on a CPU the resident set's
    high-water mark. MPS keeps no peak (only the current allocation): measure it with `PeakMemory`."""
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    if device == "mps":
        return torch.mps.current_allocated_memory() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class PeakMemory:
    """The peak memory on `device` while the `with` block runs, in MB (`.mb`). CUDA's allocator keeps a peak (reset
    on entry); MPS reports only what is allocated now, so a background thread reads it every `interval` seconds
    and keeps the largest (activations live for a fraction of a step, so the value at the end would miss them); on
    a CPU, the process's resident high-water mark. `read` replaces the MPS reading (bytes), for tests."""

    def __init__(self, device: str, interval: float = 0.002, read=None):
        self.device, self.interval, self.read = device, interval, read
        self.peak = 0
        self._stop = None

    def __enter__(self) -> PeakMemory:
        import threading

        import torch

        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        elif self.device == "mps" or self.read is not None:
            read = self.read or torch.mps.current_allocated_memory
            self._stop = threading.Event()

            def sample():
                while True:
                    self.peak = max(self.peak, read())
                    if self._stop.wait(self.interval):
                        break

            self._thread = threading.Thread(target=sample, name="peak-memory", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._stop is not None:
            self._stop.set()
            self._thread.join()

    @property
    def mb(self) -> float | None:
        if self._stop is not None:
            return self.peak / 2**20
        return peak_memory_mb(self.device)


def device_description() -> dict[str, Any]:
    import torch

    if torch.cuda.is_available():
        return {"type": "cuda", "name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count()}
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return {"type": "mps", "name": platform.processor() or "Apple silicon", "count": 1}
    return {
        "type": "cpu",
        "name": platform.processor() or platform.machine(),
        "count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
