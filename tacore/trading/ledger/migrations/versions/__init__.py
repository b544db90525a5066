"""One module per ledger schema revision, oldest first."""
