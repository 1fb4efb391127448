"""Training use cases: validating requests, the train job run by workers, registering its model."""
