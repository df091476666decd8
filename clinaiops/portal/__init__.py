"""The clinician web portal: server-rendered pages for clinicians, ML engineers, safety and compliance officers.

Layer 1 of DESIGN §9, a surface beside clinaiops.api and compliance, neither of which it imports. It may import
every layer below: clinaiops.loops, governance, inference, clinaiops.care, the audit ledger and clinaiops.core.
Views stay thin and make no queries of their own. clinaiops.portal.svg, .charts and .charts_monitoring are pure
computations and import no Django.
"""
