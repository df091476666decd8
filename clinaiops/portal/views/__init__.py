"""The clinician portal's views, one module per area (clinical, policy, compliance, models, monitoring). Views
stay thin: validate, call a selector or service, render."""
