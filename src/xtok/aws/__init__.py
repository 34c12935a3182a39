"""Talking to AWS or the local endpoint: sessions, minting, store, fetch, IAM, policies."""
