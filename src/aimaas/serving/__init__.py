"""Serving: model runtimes, dynamic batching, replicas, routing, autoscaling and the controller loop."""
