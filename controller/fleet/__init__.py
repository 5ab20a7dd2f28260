"""The fleet tier: cabinets that store and forward their ledgers to one central server over NATS JetStream, and the
central's directory flowing back down."""
