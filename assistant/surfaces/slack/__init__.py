"""``newsdesk slack``: the Slack bot, a thin adapter over :class:`~assistant.desk.Desk`.

- :mod:`.app`: credentials, the Web API client, Bolt listeners (mentions, DMs, thread
  follow-ups, ``/newsdesk``, buttons, the assistant panel)
- :mod:`.answering`: the worker pool that answers, streams and logs
- :mod:`.blocks`: Block Kit rendering of an answer
- :mod:`.threads`: Slack threads as conversations; de-duplication of deliveries
- :mod:`.server`: HTTP mode (``/slack/events``, ``/healthz``) and Socket Mode
"""
