"""Constants every layer may read without importing anything else."""

CLOUD_URL = "https://app.all-hands.dev"
