"""The three loops as services (DESIGN §2), one module per thing that happens in the clinic:

- ingest: a reading or a symptom arrives and the safety rules run on it;
- evaluation: the model (or the rules alone) proposes a titration step and the policy tiers it;
- review: a clinician accepts, modifies or rejects a major proposal with an e-signature;
- respond: the patient acknowledges or declines what was delivered;
- escalation: unacknowledged P0 alerts are escalated;
- transitions: the recommendation state machine they all move along.

Each state change writes its audit event in its transaction. Import from the module, not from this package.
"""
