"""The LaunchDarkly side: REST client, tolerant models, discovery, sharding."""
