"""Web workers and the evaluation worker do not import the heavy libraries until a request or task needs them
(STYLE.md "Import heavy libraries inside the function that needs them"; issue 13 "Memory").

Each check runs in a fresh interpreter (this test process has long imported everything), with production
settings completed by throwaway keys, and imports what the process imports before its first request or task:

- web: ``clinaiops.wsgi`` (what gunicorn loads), then every view behind every URL pattern, resolved recursively
  through ``get_resolver().url_patterns``, so a view module that imports a heavy library at the top fails here;
- evaluation worker: the Celery app, ``django.setup()`` and every task module (what ``celery -A clinaiops worker
  -Q evaluation`` imports at start). It scores with onnxruntime, so that one may load; explanations' shap and the
  PDF renderer may not.

Measured (bench/README.md "Memory"): scipy.stats alone was 60 MB of a 172 MB web worker.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Never in a web worker before a request needs it: explanations, training, scoring, PDFs, drift statistics.
WEB_FORBIDDEN = ("shap", "sklearn", "onnxruntime", "weasyprint", "scipy", "pandas", "skl2onnx")
# The evaluation worker scores (onnxruntime) at its first task; explanations and PDFs are other queues' work.
EVALUATION_WORKER_FORBIDDEN = ("shap", "weasyprint", "sklearn", "pandas", "skl2onnx")

_WEB = """
import json, sys
import clinaiops.wsgi  # what gunicorn loads: django.setup() and the WSGI handler
from django.urls import URLPattern, URLResolver, get_resolver

def walk(patterns, seen):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            walk(pattern.url_patterns, seen)
        elif isinstance(pattern, URLPattern):
            seen.append(pattern.lookup_str)  # imports the view's module

seen = []
walk(get_resolver().url_patterns, seen)
print(json.dumps({"views": len(seen), "modules": sorted(sys.modules)}))
"""

_WORKER = """
import json, sys
from clinaiops.celery import app
import django
django.setup()
app.loader.import_default_modules()  # the worker's start: every app's tasks module
app.finalize(auto=True)
tasks = sorted(t for t in app.tasks if not t.startswith("celery."))
print(json.dumps({"tasks": tasks, "modules": sorted(sys.modules)}))
"""

_REQUIRED = re.compile(r"ConfigurationError: ([A-Z][A-Z0-9_]+)\b([^\n]*)")


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _production_env(tmp_path: Path) -> dict[str, str]:
    """The environment production settings load with: throwaway keys, a broker URL (not connected to at import)
    and a database that is never opened. A variable production newly requires is filled in the same way."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "DJANGO_"))}
    env = {
        **keep,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "clinaiops.settings.production",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'never-opened.sqlite3'}",
        "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//lazy-imports-never-connected",
        "CLINAIOPS_VAR_DIR": str(tmp_path / "var"),
        "ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "AUDIT_SIGNING_KEY": _key(),
        "AUDIT_DIGEST_KEY": _key(),
        "MODEL_SIGNING_KEY": _key(),
        "EVIDENCE_SIGNING_KEY": _key(),
        "FIELD_ENCRYPTION_KEYS": f"f1:{_key()}",
        "BLIND_INDEX_KEYS": f"b1:{_key()}",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
    }
    for _ in range(10):
        probe = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        if probe.returncode == 0:
            return env
        missing = _REQUIRED.search(probe.stderr)
        if missing is None or missing.group(1) in {k for k in env if k not in keep}:
            pytest.fail("production settings do not load with throwaway keys:\n" + probe.stderr[-3000:])
        env[missing.group(1)] = f"t1:{_key()}" if "key_id:" in missing.group(2) else _key()
    pytest.fail("production settings kept asking for more configuration")


def _imported(code: str, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _loaded(modules: object, packages: tuple[str, ...]) -> list[str]:
    assert isinstance(modules, list)
    return sorted({name.split(".")[0] for name in modules} & set(packages))


@pytest.fixture(scope="module")
def production_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _production_env(tmp_path_factory.mktemp("lazy-imports"))


def test_web_worker_imports_no_heavy_library_with_every_view_loaded(production_env: dict[str, str]) -> None:
    result = _imported(_WEB, production_env)
    views = result["views"]
    assert isinstance(views, int) and views > 50, "the URL walk resolved almost nothing"
    assert "clinaiops.portal.views.clinical" in result["modules"]  # type: ignore[operator]
    assert _loaded(result["modules"], WEB_FORBIDDEN) == []


def test_evaluation_worker_imports_neither_shap_nor_the_pdf_renderer(production_env: dict[str, str]) -> None:
    result = _imported(_WORKER, production_env)
    assert "clinaiops.loops.tasks.evaluation_run" in result["tasks"]  # type: ignore[operator]
    assert _loaded(result["modules"], EVALUATION_WORKER_FORBIDDEN) == []


def test_the_check_sees_a_heavy_import(production_env: dict[str, str]) -> None:
    """The walk is not vacuous: a module that imports scipy at the top shows up."""
    result = _imported(_WEB + "\nimport inference.drift\nfrom scipy import stats\nprint(json.dumps({'views': 0, "
                       "'modules': sorted(sys.modules)}))", production_env)  # fmt: skip
    assert _loaded(result["modules"], WEB_FORBIDDEN) == ["scipy"]
