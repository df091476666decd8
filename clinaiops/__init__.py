"""ClinAIOps: clinical human-in-the-loop ML governance.

This package is not a layer: the top-level layout is fixed (DEVELOPERS.md), so it holds both ends of DESIGN §9,
the shared kernel (clinaiops.core, the lowest layer) and the audit ledger (clinaiops.audit) at the bottom, the
clinical records (clinaiops.care, layer 5) and the loops (clinaiops.loops, layer 2) in the middle, and the
surfaces (clinaiops.api, clinaiops.portal, clinaiops.ops, layer 1) on top, with the settings, URLs, the Celery
app and the environment helpers (clinaiops.env, imported by every layer). Each subpackage's docstring says its
layer and what it may import; pyproject's [tool.importlinter] enforces them. governance and inference (layers 3
and 4) sit between them as top-level packages, so a drawing by folder shows clinaiops/ importing from them and
being imported by them.
"""

from clinaiops.celery import app as celery_app

__all__ = ["celery_app"]
