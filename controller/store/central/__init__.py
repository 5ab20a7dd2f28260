"""The central server's store: the union of every cabinet's ledger, the fleet's registry, alarms and directory."""
