"""The shared kernel (DESIGN §9), the lowest layer: users and roles, errors with stable codes, canonical JSON,
request context, the regimen ladder and Ed25519 key handling. It imports nothing of the project's own."""
