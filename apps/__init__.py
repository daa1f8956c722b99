"""Built-in sub-apps: a demo FAQ bot and the HTTP vendor adapter."""
