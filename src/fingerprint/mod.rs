//! Fingerprinting: tell MCP servers from everything else behind an open port.
