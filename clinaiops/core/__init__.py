"""The shared kernel (DESIGN §9), the lowest layer: users and roles, errors with stable codes, canonical JSON,
request context, the regimen ladder, Ed25519 key handling (signing) and the field-encryption keyrings (crypto).

The lowest layer (DESIGN §9 layer 6, below clinaiops.audit in pyproject's import-linter layers): every layer may
import it, and it imports nothing of the project's own except the environment helpers (clinaiops.env).
"""
