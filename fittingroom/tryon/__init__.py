"""tryon."""
