"""Compliance exports (DESIGN §5), layer 1: a surface, like the API and the portal.

It may import the loops, governance, inference, care, the audit ledger and the kernel; nothing imports it except
fixtures (import-linter enforces both). It serves its own pages (compliance/views.py, under /compliance/) and one
patient API endpoint (compliance/api.py), all rendered with the portal's base template.

Map:
- models.py: Export jobs and their files (SHA-256, size).
- permissions.py: who may export what (one table).
- reports/: one module per report kind; each builds the JSON document (the source of truth) and names the template
  its HTML and PDF are rendered from; reports/__init__.py is the registry the job runner reads.
- listings.py: CSV/JSONL rows streamed from a server-side cursor, in constant memory.
- verification.py: verification of a seq range anchored at signed checkpoints, and the witness hook.
- bundle.py: the signed evidence bundle; verify_bundle.py: its standalone verifier (no Django, no project import).
- services.py (writes, audited), selectors.py (reads), tasks.py (Celery), views.py / api.py / urls.py.
"""
