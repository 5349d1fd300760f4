"""The depthcam pipeline: sources, queues, stages, sinks, metrics, configuration and the CLI."""
