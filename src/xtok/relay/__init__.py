"""The relay: a mailbox between waiting CI runs and their approvers (docs/relay-api.md)."""
