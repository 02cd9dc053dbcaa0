"""Hardware profiles for the cost model: GPU presets from vendors' data sheets, and this CPU, measured."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass

from longscope.cache import atomic_write_text, cache_dir, stable_hash
from longscope.core import UsageError

GB = 1e9
TB = 1e12


@dataclass(frozen=True)
class Hardware:
    """What one accelerator offers a request: memory, memory bandwidth, compute, and the link to host memory.

    Peaks are what the data sheet promises (or, for ``cpu``, what a probe measured); the efficiencies say how
    much of it a model's kernels reach, so that predictions are of achievable times.
    """

    name: str
    description: str
    memory_bytes: float
    bandwidth_bytes_s: float
    peak_flops: float  # dense, in the dtype named below
    flops_dtype: str
    host_link_bytes_s: float | None  # one direction; None when the cache already lives in host memory
    compute_efficiency: float = 0.5
    bandwidth_efficiency: float = 0.8
    usable_memory: float = 0.9  # share of memory a server gives to weights and caches
    source: str = ""

    @property
    def flops(self) -> float:
        return self.peak_flops * self.compute_efficiency

    @property
    def bandwidth(self) -> float:
        return self.bandwidth_bytes_s * self.bandwidth_efficiency


# Dense (no sparsity) BF16 tensor-core peaks; host links are PCIe x16, one direction.
PRESETS: dict[str, Hardware] = {
    "h100": Hardware(
        "h100", "NVIDIA H100 SXM5 80GB", 80 * GB, 3.35 * TB, 989 * TB, "bf16", 64 * GB,
        source="NVIDIA H100 data sheet: 80 GB HBM3, 3.35 TB/s, 989 TFLOPS BF16 dense, PCIe Gen5 128 GB/s",
    ),
    "h100-pcie": Hardware(
        "h100-pcie", "NVIDIA H100 PCIe 80GB", 80 * GB, 2.0 * TB, 756 * TB, "bf16", 64 * GB,
        source="NVIDIA H100 data sheet: 80 GB HBM2e, 2 TB/s, 756 TFLOPS BF16 dense, PCIe Gen5 128 GB/s",
    ),
    "h200": Hardware(
        "h200", "NVIDIA H200 SXM 141GB", 141 * GB, 4.8 * TB, 989 * TB, "bf16", 64 * GB,
        source="NVIDIA H200 data sheet: 141 GB HBM3e, 4.8 TB/s, 989 TFLOPS BF16 dense, PCIe Gen5 128 GB/s",
    ),
    "a100-80g": Hardware(
        "a100-80g", "NVIDIA A100 SXM 80GB", 80 * GB, 2.039 * TB, 312 * TB, "bf16", 32 * GB,
        source="NVIDIA A100 data sheet: 80 GB HBM2e, 2,039 GB/s, 312 TFLOPS BF16 dense, PCIe Gen4 64 GB/s",
    ),
    "l4": Hardware(
        "l4", "NVIDIA L4 24GB", 24 * GB, 300 * GB, 121 * TB, "bf16", 32 * GB,
        source="NVIDIA L4 data sheet: 24 GB GDDR6, 300 GB/s, 242 TFLOPS BF16 with sparsity (121 dense), "
        "PCIe Gen4 x16 64 GB/s",
    ),
    "rtx4090": Hardware(
        "rtx4090", "NVIDIA GeForce RTX 4090 24GB", 24 * GB, 1008 * GB, 165.2 * TB, "bf16", 32 * GB,
        source="NVIDIA Ada whitepaper: 24 GB GDDR6X, 1,008 GB/s, 165.2 TFLOPS BF16 (FP32 accumulate) dense, "
        "PCIe Gen4 x16",
    ),
}  # fmt: skip

NAMES = (*PRESETS, "cpu")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0.0


def _best_seconds(step, repeats: int) -> float:
    step()  # warm-up: first calls pay for allocation and thread start
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - started)
    return best


# The GPU presets assume a model's prefill reaches half of the data-sheet peak, where one large matmul reaches
# about 80% of it; the CPU probe times one large matmul, so it is scaled by the same ratio.
CPU_COMPUTE_EFFICIENCY = 0.5 / 0.8


def measure_cpu(matmul_size: int = 2048, copy_mib: int = 256, repeats: int = 3) -> Hardware:
    """Probe this machine: float32 matmul FLOP/s and copy bandwidth, with torch's threads, best of a few.

    float32 because longscope runs models in float32 on a CPU. The best of several runs, since other work
    on a shared machine only ever makes a run slower.
    """
    import torch

    a = torch.randn(matmul_size, matmul_size)
    b = torch.randn(matmul_size, matmul_size)
    seconds = _best_seconds(lambda: torch.mm(a, b), repeats)
    flops = 2.0 * matmul_size**3 / seconds
    source_buf = torch.ones(copy_mib * 1024 * 1024 // 4)
    target_buf = torch.empty_like(source_buf)
    seconds = _best_seconds(lambda: target_buf.copy_(source_buf), repeats)
    bandwidth = 2.0 * source_buf.numel() * 4 / seconds  # every byte read once and written once
    threads = torch.get_num_threads()
    return Hardware(
        name="cpu",
        description=f"{_cpu_name()} ({threads} threads)",
        memory_bytes=_memory_bytes(),
        bandwidth_bytes_s=bandwidth,
        peak_flops=flops,
        flops_dtype="fp32",
        host_link_bytes_s=None,
        compute_efficiency=CPU_COMPUTE_EFFICIENCY,
        bandwidth_efficiency=1.0,  # a streaming copy is already what real reads achieve
        usable_memory=0.9,
        source=f"measured on this machine: {matmul_size}² float32 matmul and a {copy_mib} MiB copy, "
        f"best of {repeats}",
    )


def cpu_profile(refresh: bool = False) -> Hardware:
    """This CPU's measured profile, cached per CPU model and thread count so each report does not re-probe."""
    import torch

    key = stable_hash([_cpu_name(), os.cpu_count(), torch.get_num_threads()])
    path = cache_dir() / "hardware" / f"cpu-{key}.json"
    if path.is_file() and not refresh:
        try:
            return Hardware(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError):
            pass  # an unreadable cache is measured again
    profile = measure_cpu()
    atomic_write_text(path, json.dumps(asdict(profile), indent=1))
    return profile


def hardware(name: str) -> Hardware:
    """A profile by name: a data-sheet preset, or ``cpu`` for this machine, measured once and cached."""
    key = name.strip().lower()
    if key == "cpu":
        return cpu_profile()
    if key in PRESETS:
        return PRESETS[key]
    raise UsageError(f"unknown hardware {name!r}; known: {', '.join(NAMES)}")
