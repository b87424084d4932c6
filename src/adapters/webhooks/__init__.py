"""The end-of-call webhooks' HTTP side: the sender (SSRF-guarded) and the receiver's verification."""
