"""The handles users hold: the client, its conversations, their files and the progress line."""
