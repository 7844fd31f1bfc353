"""Muse's Azure platform as Pulumi components: one Azure concern per module."""
