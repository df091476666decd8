"""The patient–clinician loop (DESIGN §2): shared goals, notes, adaptive follow-up and the visit summary.

It sits above the loops (a visit summary reports the AI's recommendations and who decided them) and below the
surfaces: the portal shows it and the patient API (next issue) reads `notes_for_patient_view` and the goals.
"""
