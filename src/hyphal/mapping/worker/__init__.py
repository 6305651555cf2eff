"""The mapping worker: target guard, rotating SQLite outbox, shipper, run loop, trace API."""
