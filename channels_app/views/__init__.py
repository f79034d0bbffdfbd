"""Pages of the messaging app: the shared inbox, the sandbox simulator and the channels."""
