"""Field encryption at rest and the blind index (DESIGN §6, issue 8 §3).

Direct identifiers (a patient's name, date of birth and MRN) and clinician or patient free text (review reasons,
break-glass reasons, symptom notes; clinical notes and alert acknowledgement notes later) are stored as AES-256-GCM
envelopes, never as plain text:

    v1:<key id>:<base64 nonce>:<base64 ciphertext and tag>

- `keys`: the keyrings, from the environment (FIELD_ENCRYPTION_KEYS, BLIND_INDEX_KEYS: "kid:base64,…", the first
  key current), or development keys generated under AUDIT_KEY_DIR in the embedded default.
- `envelope`: encrypt and decrypt one value. The associated data binds the ciphertext to its table and column, so
  a value copied into another column does not decrypt; decryption picks the key by the envelope's key id, so old
  keys stay readable while `manage.py rotate_keys` re-encrypts.
- `fields`: the model fields that do this transparently (EncryptedTextField, EncryptedDateField) and the keyed
  blind index that serves exact lookups (BlindIndexField).
- `blind_index`: the normalisation and HMAC of the looked-up values (MRN, full name, family name).
- `rotation`: the schema-wide re-encryption and index rebuild, batch by batch; the audited service and the
  command live in clinaiops.care (the kernel may not import the ledger).
"""
