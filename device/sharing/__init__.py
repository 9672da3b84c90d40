"""What the owner shares with the fleet: catalog listings, ratings and imports, mint requests,
the retraction. Each is written to the outbox in the same transaction as the data it follows,
so nothing is shared that was not saved and nothing saved is left unshared. The web app and the
CLI call these; the sync client (``device/sync``) only sends what they queued and applies what
the relay answers."""
