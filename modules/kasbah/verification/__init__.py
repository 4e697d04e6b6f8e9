"""Checks on rendered artifacts (schemas, zero-trust reachability); see the render issue."""
