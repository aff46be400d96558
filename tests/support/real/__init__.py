"""A real OpenHands server on loopback for tests: the launcher and a scripted fake LLM."""
