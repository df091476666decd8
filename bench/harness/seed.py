"""The seeded database every web bench starts from, and the keys that go with it.

It is built once through the real services (`manage.py demo_build`: the synthetic cohort, a trained, signed-off
and deployed model, 14 days of the loops, a drift report), which takes 5–10 minutes on 2 cores, and kept
as a PostgreSQL template named after a fingerprint of the migrations and the cohort code. Each bench run copies
it (seconds) into databases of its own and drops them afterwards; the template is reused deliberately, and
rebuilt when the fingerprint changes or BENCH_RESEED=1. Its artifacts and keys live beside it in var/bench/.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import pg
from harness.server import ROOT, environment_for

SEED_VERSION = "seed-v1"  # bump when what the seed holds changes without a migration
VAR = ROOT / "var" / "bench"
TEMPLATE_PREFIX = "clinaiops_bench_seed_"


def fingerprint(key_names: list[str]) -> str:
    digest = hashlib.sha256(SEED_VERSION.encode())
    digest.update(",".join(key_names).encode())
    files = sorted(ROOT.glob("*/migrations/*.py")) + sorted(ROOT.glob("clinaiops/*/migrations/*.py"))
    files += sorted((ROOT / "fixtures").rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _seed_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def keys_for(folder: Path) -> dict[str, str]:
    """Throwaway keys for this seed, kept with it: the model manifests and checkpoints in the template are signed
    with them, so every run that copies the template must use the same ones."""
    path = folder / "env.json"
    if path.exists():
        keys: dict[str, str] = json.loads(path.read_text())
        return keys
    keys = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "AUDIT_SIGNING_KEY": _seed_key(),
        "AUDIT_DIGEST_KEY": _seed_key(),
        "MODEL_SIGNING_KEY": _seed_key(),
        "EVIDENCE_SIGNING_KEY": _seed_key(),
    }
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(keys, indent=2))
    path.chmod(0o600)
    return keys


_REQUIRED = re.compile(r"ConfigurationError: ([A-Z][A-Z0-9_]+)\b([^\n]*must[^\n]*)")


def production_env(env: dict[str, str]) -> dict[str, str]:
    """`env` completed until clinaiops.settings.production loads: each variable production says "must be set"
    gets a throwaway key (other sessions keep adding keys; the bench should not need editing for each)."""
    env = dict(env)
    # The bench talks plain HTTP to gunicorn on loopback, with no TLS proxy in front: production would redirect
    # every request to HTTPS (issue 8 §4).
    env.setdefault("SECURE_SSL_REDIRECT", "0")
    for _ in range(12):
        probe = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()"],
            cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "clinaiops.settings.production"},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if probe.returncode == 0:
            return env
        missing = _REQUIRED.search(probe.stderr)
        if missing is None or missing.group(1) in env:
            raise RuntimeError("production settings do not load:\n" + probe.stderr[-2000:])
        # A keyring ("key_id:base64,…") or a bare base64 key, as the message asks.
        env[missing.group(1)] = f"bench:{_seed_key()}" if "key_id:" in missing.group(2) else _seed_key()
    raise RuntimeError("production settings kept asking for more configuration")


def keys_complete(folder: Path) -> dict[str, str]:
    """The seed's keys, completed with every key production asks for and kept with the seed: data the seed
    encrypts or signs must be readable by the servers the bench starts on copies of it."""
    keys = keys_for(folder)
    probe = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "DJANGO_"))},
        **keys, "PYTHONPATH": str(ROOT), "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
        "DATABASE_URL": "sqlite:////tmp/clinaiops-bench-settings-probe.sqlite3",
    }  # fmt: skip
    completed = production_env(probe)
    added = {k: v for k, v in completed.items() if k not in probe}
    if added:
        keys = {**keys, **added}
        (folder / "env.json").write_text(json.dumps(keys, indent=2))
    return keys


def seed_template(*, rebuild: bool = False) -> tuple[str, Path, dict[str, str]]:
    """(template database name, artifact folder, keys), building the template first when it is missing. The
    fingerprint covers the names of the keys production needs, so a new kind of key rebuilds the seed."""
    staging = VAR / "keys-staging"
    names = sorted(keys_complete(staging))
    fp = fingerprint(names)
    name = TEMPLATE_PREFIX + fp
    folder = VAR / f"seed-{fp}"
    if not (folder / "env.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(staging / "env.json", folder / "env.json")
    keys = keys_complete(folder)
    if rebuild and pg.db_exists(name):
        pg.db_drop(name)
    if pg.db_exists(name) and (folder / "artifacts").is_dir():
        return name, folder / "artifacts", keys
    for stale in pg.db_list(TEMPLATE_PREFIX):
        if stale != name:  # an older fingerprint's template, or an interrupted build
            pg.db_drop(stale)
    for old in VAR.glob("seed-*"):  # keys-staging is not a seed folder and stays
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    building = name + "_build"
    pg.db_drop(building)
    pg.db_create(building)
    shutil.rmtree(folder / "artifacts", ignore_errors=True)
    print(f"building the seed database {name} through the real services (demo_build, 5–10 minutes; reused by "
          "later runs)", flush=True)  # fmt: skip
    started = time.monotonic()
    env = environment_for(
        "clinaiops.settings.base",
        {
            **keys, "DATABASE_URL": pg.db_url(building), "ARTIFACT_ROOT": str(folder / "artifacts"),
            "CLINAIOPS_VAR_DIR": str(folder / "var"), "LOG_FORMAT": "plain", "LOG_LEVEL": "WARNING",
            "CELERY_BROKER_URL": "memory://",
        },
    )  # fmt: skip
    log = folder / "demo_build.log"
    with log.open("w") as out:
        done = subprocess.run(
            [sys.executable, "manage.py", "demo_build"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            timeout=3600, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        pg.db_drop(building)
        raise RuntimeError(f"demo_build failed (exit {done.returncode}); see {log}")
    pg.db_rename(building, name)  # the name appears only once the build is complete
    print(f"  seed built in {time.monotonic() - started:.0f}s", flush=True)
    return name, folder / "artifacts", keys
