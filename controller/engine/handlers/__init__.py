"""One module per workflow. Each handler registers its commands, queries and hooks on the engine's registry and
imports none of the others (an import-linter contract keeps it so)."""
