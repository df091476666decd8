"""Training runs: which code and libraries trained a model, and the run itself (fit, gates, registration).

A run records the snapshot hash, family, parameters, seed, code version and library versions (DESIGN §3), so
the same snapshot, parameters and seed can be shown to give the same predictions.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import logging
import re
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from clinaiops.audit.models import AuditAction
from clinaiops.audit.services import audit_record
from clinaiops.core.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from clinaiops.core.models import User
from clinaiops.core.task_retry import TRANSIENT_DATABASE_ERRORS
from clinaiops.env import ConfigurationError, env_str
from inference.features import feature_matrix
from inference.models import CLASS_ORDER, DatasetSnapshot, ModelVersion, RunStatus, TrainingRun
from inference.selectors import model_version_for_run
from inference.services.datasets import snapshot_rows_attested
from inference.services.registry import registration_commit, registration_prepare
from inference.signals import training_run_queued
from inference.training import DEFAULT_PARAMS, model_train

ProgressCallback = Callable[[int, str], None]
logger = logging.getLogger(__name__)

DISTRIBUTION = "clinaiops"
BUILD_VARIABLE = "CLINAIOPS_BUILD"
# Short enough that "build:<id>+package:<version>" fits TrainingRun.code_version (64 characters).
_BUILD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
LIBRARIES = ("numpy", "scikit-learn", "skl2onnx", "onnx", "onnxruntime", "shap", "django")


def code_version() -> str:
    """Which code is running, saying how that is known:

    - "git:<commit>" in a git checkout;
    - "build:<id>+package:<version>" when the image build set CLINAIOPS_BUILD;
    - otherwise "package:<version>+sha256:<16 hex>", a hash of the installed distribution's files.

    Never the bare package version: every build of 0.1.0 would then claim to be the same code.
    """
    commit = _git_commit(Path(settings.BASE_DIR))
    if commit:
        return f"git:{commit}"
    version = importlib.metadata.version(DISTRIBUTION)
    build = env_str(BUILD_VARIABLE, default="").strip()
    if build:
        if not _BUILD_ID.fullmatch(build):
            raise ConfigurationError(
                f"environment variable {BUILD_VARIABLE} must be 1–32 letters, digits, '.', '_' or '-'"
            )
        return f"build:{build}+package:{version}"
    return f"package:{version}+sha256:{distribution_sha256()[:16]}"


def _git_commit(directory: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=directory,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):  # no git binary, or an unusable directory
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


@functools.cache
def distribution_sha256() -> str:
    """The SHA-256 of the installed distribution's files (its top-level packages, wherever they are installed,
    editable or not). Computed once per process: the code a process runs does not change under it."""
    distribution = importlib.metadata.distribution(DISTRIBUTION)
    roots: list[Path] = []
    for name in (distribution.read_text("top_level.txt") or "").split():
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            roots.extend(Path(location) for location in spec.submodule_search_locations)
    if not roots:
        raise ConfigurationError(f"the {DISTRIBUTION} distribution lists no packages to hash")
    return source_tree_sha256(roots)


def source_tree_sha256(roots: Iterable[Path]) -> str:
    """One hash over every file under `roots` (names and contents), bytecode caches left out."""
    digest = hashlib.sha256()
    for root in sorted(roots):
        for path in sorted(root.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts:
                continue
            name = path.relative_to(root.parent).as_posix()
            digest.update(name.encode("utf-8") + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in LIBRARIES}


@transaction.atomic
def training_run_create(
    *,
    actor: User | None,
    snapshot: DatasetSnapshot,
    family: str = "logistic",
    params: dict[str, Any] | None = None,
    seed: int = 0,
) -> TrainingRun:
    """Queue a run on a snapshot that passed its data-quality gate."""
    if not snapshot.quality_passed:
        failed = [name for name, check in snapshot.quality_report["checks"].items() if not check["passed"]]
        raise ValidationFailed(
            "This snapshot failed its data-quality gate and cannot be trained on.",
            fields={"snapshot": [f"Failed check: {name}" for name in failed]},
            code="quality_gate_failed",
        )
    if family not in DEFAULT_PARAMS:
        raise ValidationFailed("Unknown model family.", fields={"family": [f"Choose one of {sorted(DEFAULT_PARAMS)}."]})
    run = TrainingRun.objects.create(
        snapshot=snapshot,
        family=family,
        params={**DEFAULT_PARAMS[family], **(params or {})},
        seed=seed,
        code_version=code_version(),
        library_versions=library_versions(),
        requested_by=actor,
        created_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    audit_record(
        action=AuditAction.TRAINING_STARTED,
        object_type="training_run",
        object_id=run.pk,
        actor=actor,
        system_reason="" if actor else "scheduled",
        payload={"snapshot_sha256": snapshot.sha256, "family": family, "seed": seed},
    )
    return run


def training_run_execute(*, run_id: int, progress: ProgressCallback | None = None) -> TrainingRun:
    """Train, export to ONNX, run the gates, sign the manifest and register. Safe to call twice: only a queued
    run starts. While it runs, the run's heartbeat is kept fresh, so the sweeper can tell a run whose worker died
    (training_runs_sweep) from a long one."""
    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, progress=5, message="loading snapshot"
    )
    run = TrainingRun.objects.select_related("snapshot").get(pk=run_id)
    if claimed != 1:
        return run
    heartbeat = _Heartbeat.start_for(run_id)

    def report(pct: int, msg: str) -> None:
        TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            progress=pct, message=msg[:200], heartbeat_at=timezone.now()
        )
        if progress is not None:
            progress(pct, msg)

    try:
        _training_run_steps(run, report)
    except TRANSIENT_DATABASE_ERRORS:
        # A database blip, not a bad run: hand it back to the queue for the task's retry (clinaiops.core.task_retry)
        # rather than failing it. If the database is still down this cannot be written either; the sweeper then
        # finds the run "running" with a stale heartbeat and requeues it.
        _training_run_release(run_id)
        raise
    except Exception as exc:  # task boundary: record the failure, never leave the run "running"
        with transaction.atomic():
            TrainingRun.objects.filter(pk=run.pk).update(
                status=RunStatus.FAILED, message=f"{type(exc).__name__}: {exc}"[:200], finished_at=timezone.now()
            )
            audit_record(
                action=AuditAction.TRAINING_FINISHED,
                object_type="training_run",
                object_id=run.pk,
                system_reason="training_task",
                payload={"status": RunStatus.FAILED, "error": type(exc).__name__},
            )
        raise
    finally:
        if heartbeat is not None:
            heartbeat.stop()
    run.refresh_from_db()
    return run


def _training_run_steps(run: TrainingRun, report: ProgressCallback) -> None:
    report(5, "loading snapshot")
    rows = snapshot_rows_attested(run.snapshot)  # signed when made; the row alone is not trusted
    X = feature_matrix([row["features"] for row in rows])
    y = np.asarray([CLASS_ORDER.index(row["label"]) for row in rows], dtype=np.int64)
    report(20, f"fitting {run.family} on {len(rows)} rows")
    fitted = model_train(X, y, family=run.family, params=run.params, seed=run.seed)
    report(60, "exported to ONNX; running the gates")
    # The gates take seconds: run them before the transaction, which holds the audit ledger's lock.
    prepared = registration_prepare(run=run, fitted=fitted, rows=rows)
    report(90, "gates done; registering")
    with transaction.atomic():
        version = registration_commit(prepared)
        TrainingRun.objects.filter(pk=run.pk).update(
            status=RunStatus.SUCCEEDED, progress=100, message="registered", metrics=fitted.metrics,
            model_sha256=version.sha256, finished_at=timezone.now(),
        )  # fmt: skip
        audit_record(
            action=AuditAction.TRAINING_FINISHED,
            object_type="training_run",
            object_id=run.pk,
            system_reason="training_task",
            payload={"model_sha256": version.sha256, "status": RunStatus.SUCCEEDED},
        )
    report(100, f"registered {version.short_hash} ({version.approval_state})")


def training_run_register(*, run_id: int, progress: ProgressCallback | None = None) -> ModelVersion:
    """The version a training run registered, running a queued run first. Idempotent: training registers the
    version itself, so for a finished run this only finds it."""
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"There is no training run {run_id}.")
    if run.status == RunStatus.QUEUED:
        run = training_run_execute(run_id=run.pk, progress=progress)
    if run.status == RunStatus.RUNNING:
        raise Conflict(f"Training run {run.pk} is still running; it registers its model when it finishes.")
    if run.status == RunStatus.FAILED:
        raise ValidationFailed(
            f"Training run {run.pk} failed ({run.message or 'no message'}); start a new run.", code="run_failed"
        )
    version = model_version_for_run(run)
    if version is None:
        raise NotFound(f"Training run {run.pk} finished without a registered model version.")
    return version


# --- Recovery without a human (issue 8 §5) ----------------------------------------------------------------
# A run is stranded when its message is lost (the broker was down when it was enqueued, a redelivery found it
# "running") or its worker died mid-fit (kill -9, OOM, a node lost). The heartbeat tells the sweeper which runs are
# alive; the sweeper requeues the rest, and fails a run with a reason once it has been requeued
# TRAINING_MAX_REQUEUES times, so nothing stays "queued" or "running" forever.


class TaskQueueUnavailable(ApplicationError):
    code = "task_queue_unavailable"
    status = 503
    retry_after = 30


class _Heartbeat:
    """Refreshes a running run's heartbeat_at every TRAINING_HEARTBEAT_SECONDS from a thread of its own, so a fit
    or a gate that takes minutes without reporting progress still shows its worker is alive. The thread dies with
    the process: after a kill -9 the heartbeat goes stale, which is the point."""

    def __init__(self, run_id: int, interval: float) -> None:
        self._run_id = run_id
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"training-run-{run_id}-heartbeat", daemon=True)

    @classmethod
    def start_for(cls, run_id: int) -> _Heartbeat | None:
        # Inside a caller's transaction (a test, a nested service call) the claim is not committed, and the thread's
        # own connection would wait on the row lock the caller holds: no thread; the progress steps still beat.
        if transaction.get_connection().in_atomic_block:
            return None
        heartbeat = cls(run_id, float(settings.TRAINING_HEARTBEAT_SECONDS))
        heartbeat._thread.start()
        return heartbeat

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=self._interval + 5)

    def _beat(self) -> None:
        try:
            while not self._stopped.wait(self._interval):
                try:
                    TrainingRun.objects.filter(pk=self._run_id, status=RunStatus.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError:  # a blip: the next beat tries again; the threshold spans many beats
                    logger.warning("training run %s: heartbeat not written", self._run_id, exc_info=True)
        finally:
            connections.close_all()  # this thread's own connections only (they are per thread)


def _training_run_release(run_id: int) -> None:
    """Put a running run back in the queue after a transient database error, for the task's retry to claim."""
    try:
        with transaction.atomic():
            released = TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
                status=RunStatus.QUEUED, heartbeat_at=timezone.now(), message="database unavailable; retrying"
            )
            if released:
                audit_record(
                    action=AuditAction.TRAINING_REQUEUED,
                    object_type="training_run",
                    object_id=run_id,
                    system_reason="training_task",
                    payload={"from_status": RunStatus.RUNNING, "reason": "database_unavailable"},
                )
    except DatabaseError:  # still down: the sweeper will find the run's heartbeat stale
        logger.warning("training run %s: could not be released after a database error", run_id, exc_info=True)


def _training_run_fail(*, run_id: int, from_status: str, reason: str, message: str) -> bool:
    """Fail a queued or running run with a reason (audited). False when the run had already moved on."""
    with transaction.atomic():
        failed = TrainingRun.objects.filter(pk=run_id, status=from_status).update(
            status=RunStatus.FAILED, message=message[:200], finished_at=timezone.now()
        )
        if failed:
            audit_record(
                action=AuditAction.TRAINING_FINISHED,
                object_type="training_run",
                object_id=run_id,
                system_reason="training_recovery",
                payload={"status": RunStatus.FAILED, "error": reason},
            )
    return bool(failed)


def _training_run_send(run_id: int) -> None:
    # inference.tasks imports this module, so the task is reached through a signal whose receiver (connected in
    # InferenceConfig.ready) enqueues it. Signal.send lets the receiver's broker errors through to the caller.
    training_run_queued.send(sender=TrainingRun, run_id=run_id)


def training_run_enqueue(*, run_id: int) -> None:
    """Send a queued run to the workers. When the broker cannot take the message, the run is failed with the
    reason (audited) and TaskQueueUnavailable is raised: a run nobody will ever receive is not left "queued"."""
    try:
        _training_run_send(run_id)
    except (BrokerError, OSError) as exc:
        detail = str(exc) or type(exc).__name__
        _training_run_fail(
            run_id=run_id,
            from_status=RunStatus.QUEUED,
            reason="task_queue_unavailable",
            message=f"not started: the task queue (Celery broker) was unreachable ({detail})",
        )
        raise TaskQueueUnavailable(
            f"Training run {run_id} was not started: the task queue (Celery broker) is unreachable ({detail}). "
            "The run is marked failed; start a new one when the broker is back."
        ) from exc


@dataclass(frozen=True)
class TrainingSweep:
    requeued: tuple[int, ...]
    failed: tuple[int, ...]


def _requeue_after_commit(run_id: int) -> None:
    try:
        _training_run_send(run_id)
    except (BrokerError, OSError):  # the broker went away again: the run is queued, the next sweep resends it
        logger.warning("training run %s: requeued but not sent; the next sweep resends it", run_id, exc_info=True)


def training_runs_sweep(*, now: datetime | None = None) -> TrainingSweep:
    """Celery beat, every few minutes: requeue each run that is "queued" with no worker taking it for
    TRAINING_QUEUED_STALE_SECONDS (its message was lost), or "running" with a heartbeat older than
    TRAINING_STALE_SECONDS (its worker died). A run already requeued TRAINING_MAX_REQUEUES times is failed with
    the reason instead. Every change is a conditional update on the state the sweep saw, audited in the same
    transaction, so two sweeps, or a sweep racing a worker that just claimed the run, change it once."""
    now = now or timezone.now()
    last_sign = Coalesce("heartbeat_at", "started_at", "created_at")
    queued_cutoff = now - timedelta(seconds=settings.TRAINING_QUEUED_STALE_SECONDS)
    running_cutoff = now - timedelta(seconds=settings.TRAINING_STALE_SECONDS)
    stale = (
        TrainingRun.objects.annotate(last_sign=last_sign)
        .filter(
            Q(status=RunStatus.QUEUED, last_sign__lt=queued_cutoff)
            | Q(status=RunStatus.RUNNING, last_sign__lt=running_cutoff)
        )
        .order_by("pk")
        .values_list("pk", "status", "requeue_count", "last_sign")
    )
    requeued: list[int] = []
    failed: list[int] = []
    for run_id, status, requeue_count, seen in list(stale):
        reason = "worker_lost" if status == RunStatus.RUNNING else "never_picked_up"
        if requeue_count >= settings.TRAINING_MAX_REQUEUES:
            lost = "its worker stopped" if status == RunStatus.RUNNING else "no worker took it"
            if _training_run_fail(
                run_id=run_id,
                from_status=status,
                reason=reason,
                message=f"failed after {requeue_count} requeues: {lost} (last sign of life {seen:%Y-%m-%d %H:%M} UTC)",
            ):
                failed.append(run_id)
            continue
        with transaction.atomic():
            moved = (
                TrainingRun.objects.annotate(last_sign=last_sign)
                .filter(pk=run_id, status=status, requeue_count=requeue_count, last_sign__lte=seen)
                .update(
                    status=RunStatus.QUEUED,
                    requeue_count=requeue_count + 1,
                    heartbeat_at=now,
                    started_at=None,
                    progress=0,
                    message=f"requeued ({reason.replace('_', ' ')})",
                )
            )
            if not moved:  # a worker claimed it or beat in the meantime
                continue
            audit_record(
                action=AuditAction.TRAINING_REQUEUED,
                object_type="training_run",
                object_id=run_id,
                system_reason="training_sweep",
                payload={"from_status": status, "reason": reason, "requeue_count": requeue_count + 1},
            )
            transaction.on_commit(functools.partial(_requeue_after_commit, run_id))
        requeued.append(run_id)
    return TrainingSweep(requeued=tuple(requeued), failed=tuple(failed))
