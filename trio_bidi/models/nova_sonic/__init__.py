"""The Amazon Nova Sonic provider (HTTP/2, AWS event-stream, SigV4)."""
