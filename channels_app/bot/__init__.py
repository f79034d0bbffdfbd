"""The AI bot: profiles, the knowledge base and its retrieval, the reply pipeline, metering."""
