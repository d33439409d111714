"""The Pulumi program of the Azure ML platform, its settings, checks and offline harness."""
