"""Compliance export benchmarks (issue 9).

- streaming: the audit listing of 10,000 and of 1,000,000 events written as CSV and as JSON Lines from a
  server-side cursor, each in a fresh process, with rows/s, the process's peak RSS and the RSS sampled at every
  64 KB chunk (what the stream itself adds over the loaded app). The goal: peak RSS at 1M within
  1.5× of 10k (memory flat in the size of the export). The baseline is the same run's 10k figure;
- evidence bundle: the signed zip of a demo-sized range (the first 42,000 events, about what `make demo` writes) and
  of the whole 1M-event range (report JSON and PDF, CSV, JSON Lines, checkpoints,
  witness, manifest, signature), and the standalone verifier over it, which recomputes every hash.

It uses its own PostgreSQL database (BENCH_DATABASE_URL, default clinaiops_bench_export), grown with
clinaiops.audit.synthetic. BENCH_QUICK=1 uses 200,000 events instead of 1,000,000; BENCH_EXPORT_REUSE=1 keeps the
ledger an earlier run built; BENCH_EXPORT_SKIP_BUNDLE=1 measures the streaming only.

    .venv/bin/python bench/export_bench.py
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clinaiops_bench_export")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _django import ROOT, django_setup
from harness.report import Figure, figures_print, machine, results_write

LARGE = 200_000 if os.environ.get("BENCH_QUICK") else int(os.environ.get("BENCH_EXPORT_EVENTS", "1000000"))
SMALL = 10_000
DEMO_EVENTS = 42_000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return peak_rss_mb()


def child(events: int, fmt: str, out: Path) -> None:
    """One export in this process: the first `events` events as `fmt`, through compliance.listings. Django is set
    up without `migrate` (the parent migrated), so the peak is the loaded app plus the streaming itself; RSS is also
    sampled at every written chunk, so a growth during the stream cannot hide below an earlier peak."""
    os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinaiops.settings.test")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db.models import Q

    from compliance.listings import audit_listing, chunks_write, csv_chunks, jsonl_chunks
    from governance.ledger_search import LedgerFilters, ResolvedFilters, SeqRange

    resolved = ResolvedFilters(
        filters=LedgerFilters(), seq_range=SeqRange(1, events), head_seq=events, condition=Q(seq__lte=events)
    )
    listing = audit_listing(resolved, total=events)
    before = current_rss_mb()
    sampled = [before]

    def sampling(chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            sampled.append(current_rss_mb())
            yield chunk

    started = time.perf_counter()
    written = chunks_write(sampling((csv_chunks if fmt == "csv" else jsonl_chunks)(listing)), out)
    seconds = time.perf_counter() - started
    print(f"{events} {fmt} {seconds:.3f} {peak_rss_mb():.1f} {before:.1f} {max(sampled):.1f} {written.size}")


def measure(events: int, fmt: str, directory: Path) -> tuple[float, float, float, float, int]:
    """(rows/s, peak RSS MB, RSS MB before streaming, highest RSS MB sampled while streaming, bytes) of one export
    in a fresh process."""
    out = directory / f"{events}.{fmt}"
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(events), fmt, str(out)],
        capture_output=True, text=True, check=True, cwd=ROOT, env=os.environ.copy(), timeout=3600,
    )  # fmt: skip
    _, _, seconds, peak, before, streaming, size = result.stdout.strip().splitlines()[-1].split()
    out.unlink(missing_ok=True)
    return events / float(seconds), float(peak), float(before), float(streaming), int(size)


def main() -> None:
    reuse = bool(os.environ.get("BENCH_EXPORT_REUSE"))  # keep a ledger built by an earlier run of this bench
    django_setup(fresh=not reuse)
    from django.db import connection

    from clinaiops.audit.models import AuditEvent
    from clinaiops.audit.synthetic import synthetic_ledger_create
    from clinaiops.audit.witness import witness_file_path
    from clinaiops.core.models import Role, User

    print(f"compliance export benchmark on {connection.vendor} ({os.cpu_count()} cores), {LARGE:,} events")
    if not (reuse and AuditEvent.objects.filter(seq=LARGE).exists()):
        witness_file_path().unlink(missing_ok=True)
        built = time.perf_counter()
        synthetic_ledger_create(LARGE, checkpoint_every=1000, batch=20_000, witness=True)
        print(f"  built the ledger in {time.perf_counter() - built:.0f}s (bulk, untimed)", flush=True)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="clinaiops-export-bench-") as tmp:
        directory = Path(tmp)
        for fmt in ("csv", "jsonl"):
            small_rate, small_peak, small_base, small_stream, small_size = measure(SMALL, fmt, directory)
            large_rate, large_peak, large_base, large_stream, large_size = measure(LARGE, fmt, directory)
            print(f"  {fmt}: {SMALL:,} events {small_rate:,.0f} rows/s, peak RSS {small_peak:.0f} MB "
                  f"({small_size / 1e6:.1f} MB written); {LARGE:,} events {large_rate:,.0f} rows/s, peak RSS "
                  f"{large_peak:.0f} MB ({large_size / 1e6:.0f} MB written); RSS while streaming at most "
                  f"{small_stream:.0f} / {large_stream:.0f} MB (loaded app {small_base:.0f} / {large_base:.0f} MB)",
                  flush=True)  # fmt: skip
            figures.append(Figure("export", f"{fmt} streaming, {LARGE:,} events: peak RSS", large_peak, "MB",
                                  baseline=small_peak, baseline_name=f"{SMALL:,} events", better="lower",
                                  goal="≤ 1.5×"))  # fmt: skip
            figures.append(Figure("export", f"{fmt} streaming, {LARGE:,} events: RSS added while streaming",
                                  large_stream - large_base, "MB", baseline=max(small_stream - small_base, 0.1),
                                  baseline_name=f"{SMALL:,} events", better="lower"))  # fmt: skip
            figures.append(Figure("export", f"{fmt} streaming, {LARGE:,} events: rows/s", large_rate, "rows/s",
                                  baseline=small_rate, baseline_name=f"{SMALL:,} events"))  # fmt: skip

        if os.environ.get("BENCH_EXPORT_SKIP_BUNDLE"):
            figures_print("export figures (baseline: the same run's 10k export)", figures)
            return
        officer, _ = User.objects.get_or_create(username="bench_compliance", defaults={"role": Role.COMPLIANCE_OFFICER})
        from compliance.services import export_file_path, export_request, export_run

        # The demo ledger's size (make demo writes about 42,000 events): the bundle `make demo` writes at its end. A
        # quick run's ledger (20,000 events) is smaller than that, so it exports the whole of it here.
        demo_events = min(DEMO_EVENTS, LARGE)
        demo_end = AuditEvent.objects.filter(seq=demo_events).values_list("recorded_at", flat=True).get()
        started = time.perf_counter()
        demo_export = export_request(
            actor=officer, kind="evidence_bundle", parameters={"to": demo_end.isoformat()}, formats=["zip"],
            enqueue=False,
        )  # fmt: skip
        demo_export = export_run(export_id=demo_export.pk)
        demo_seconds = time.perf_counter() - started
        if demo_export.status != "finished":
            raise SystemExit(f"the demo-sized evidence bundle failed: {demo_export.error_message}")
        demo_bundle = export_file_path(demo_export.files.get())
        print(f"  evidence bundle of the first {demo_events:,} events (the demo ledger's size): {demo_seconds:.1f}s, "
              f"{demo_bundle.stat().st_size / 1e6:.1f} MB zip", flush=True)  # fmt: skip
        figures.append(Figure("export", f"evidence bundle, {demo_events:,} events (demo size)", demo_seconds, "s",
                              better="lower"))  # fmt: skip
        demo_bundle.unlink()
        started = time.perf_counter()
        export = export_request(actor=officer, kind="evidence_bundle", parameters={}, formats=["zip"], enqueue=False)
        export = export_run(export_id=export.pk)
        bundle_seconds = time.perf_counter() - started
        if export.status != "finished":
            raise SystemExit(f"the evidence bundle failed: {export.error_message}")
        bundle = export_file_path(export.files.get())
        print(f"  evidence bundle of all {LARGE:,} events: {bundle_seconds:.1f}s, {bundle.stat().st_size / 1e6:.0f} MB "
              f"zip", flush=True)  # fmt: skip
        started = time.perf_counter()
        verified = subprocess.run([sys.executable, str(ROOT / "compliance" / "verify_bundle.py"), str(bundle)],
                                  capture_output=True, text=True, check=False, timeout=3600)  # fmt: skip
        verify_seconds = time.perf_counter() - started
        details = verified.stdout.strip().replace("\n", "\n    ")
        print(f"  standalone verifier: exit {verified.returncode} in {verify_seconds:.1f}s "
              f"({LARGE / verify_seconds:,.0f} events/s)\n    {details}")  # fmt: skip
        if verified.returncode != 0:
            print(verified.stderr)
        figures.append(Figure("export", f"evidence bundle, {LARGE:,} events", bundle_seconds, "s", better="lower"))
        figures.append(Figure("export", f"bundle verifier, {LARGE:,} events", verify_seconds, "s", better="lower",
                              detail={"exit_code": verified.returncode}))  # fmt: skip
        bundle.unlink()
    figures_print("export figures (baseline: the same run's 10k export)", figures)
    ok = all(f.ratio is None or f.goal != "≤ 1.5×" or f.ratio <= 1.5 for f in figures) and verified.returncode == 0
    print(f"  peak RSS at {LARGE:,} within 1.5× of {SMALL:,}: {'PASS' if ok else 'FAIL'}")
    path = results_write("export.json", {"machine": machine(), "figures": [f.as_dict() for f in figures]})
    print(f"  written to {path}")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
    else:
        main()
