"""The ceiling the product is measured against: a bare Django REST framework app, built and served by the bench
in the same run, that does the least a reading endpoint can do (validate, insert one row) and the least a list
endpoint can do (one indexed query, serialize). No authentication, no audit, no safety rules: the gap to it is
what ClinAIOps' own work costs."""
