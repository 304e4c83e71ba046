"""Examples that put pygwire on a real socket; they use only the public API."""
