"""Camera capability: the interface the vision pipeline (issue 5) captures frames through."""
