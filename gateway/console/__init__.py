"""The operator console: accounts, the live queue, takeover of conversations, tools and audit.

``routes.router`` holds the JSON API (``/api/console/…``) and the WebSocket; ``pages.router``
serves the pages (``/console/``). Everything is kept in Redis beside the conversations it acts
on, so a takeover and the bot's turn meet in the same place (``hl:conv:{key}``).
"""
