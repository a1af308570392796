"""The embedded dialer + CRM service: the operational source systems Contour reports on.

Shared pieces live here (the simulated clock, database access and migrations); the dialer is in
``dialer_core.dialer`` and the CRM in ``dialer_core.crm``.
"""
