"""The blinded reader study: builder (sampling, blinding), store (SQLite), Streamlit app, statistics.

Modules: ``builder`` (``usbench study create``), ``store``, ``app`` (the Streamlit script) and
``serve``, ``analysis`` (detection, fool rates, leaderboard columns), ``mrmc`` (Obuchowski–Rockette/
Hillis and DBM), ``agreement`` (Fleiss, weighted Cohen, Krippendorff), ``export``.
"""
