"""The one redaction policy (_policy) and its adapters at the wire (_wire)."""
