"""Stage 4, delivery: claim in the ledger, send through apprise, mark; retries with backoff."""
