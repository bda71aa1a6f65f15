"""The blinded reader study: builder (sampling, blinding), audit (blinding leaks), store (SQLite answer log),
Streamlit app, statistics.

Modules: ``builder`` (``usbench study create``, ``study readers``), ``audit`` (``usbench study audit``),
``store``, ``app`` (the Streamlit script) and ``serve``, ``analysis`` (detection, fool rates, 2AFC,
leaderboard columns), ``mrmc`` (Obuchowski–Rockette/Hillis and DBM), ``agreement`` (Fleiss,
weighted Cohen, Krippendorff), ``export``.
"""
