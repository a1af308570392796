"""The Contour dialer: campaigns, the batcher (hopper), strategies, callbacks, telephony.

Component name ``dialer``; database ``dialer``; migrations in ``migrations/``.
"""
