"""``emomusic serve``: a local web app (FastAPI) over the Python API.

``emomusic.web.main.create_app(settings)`` builds the app. The HTTP layer holds no music
logic: every route calls the public API (compose, melody, session, estimator) through
:mod:`emomusic.web.engines`, in a bounded worker pool (:mod:`emomusic.web.jobs`), never on
the event loop. FastAPI is imported only here, so the other commands never load it.
"""
