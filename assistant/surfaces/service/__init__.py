"""``newsdesk serve``: the team service (FastAPI under uvicorn) over one shared ``Desk``.
Install with ``pip install 'newsdesk[serve]'``; see :mod:`.app` for the routes."""
