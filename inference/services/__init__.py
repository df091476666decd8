"""Model-lifecycle writes, one module per job (STYLE.md: services write, and audit in the same transaction):

* ``datasets``: labels from decisions, and content-addressed dataset snapshots;
* ``training``: training runs, with the code and library versions that made them;
* ``registry``: registration (gates and signed manifest), approval transitions, the approval that governance's
  sign-offs grant, version lookup, and storing change-control plans;
* ``serving``: serving pointers, promotion and rollback.

Part of inference (layer 4 of DESIGN §9): these modules may import the rest of inference (but not
inference.monitoring), clinaiops.care, clinaiops.audit and clinaiops.core. Import from the module that does the
job; this package re-exports nothing, so importing one job does not load the others.
"""
