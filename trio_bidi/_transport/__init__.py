"""The byte transport under the WebSocket client and server (private).

- `._wire`: bytes to and from one TCP connection, in plaintext or through TLS
  (``ssl.SSLObject`` over memory BIOs, decrypting everything a socket read brought in).
- `._secrets`: keeping credentials out of logs and exception messages, and
  server-chosen text short and printable.

The WebSocket itself is `trio_bidi._websocket`.
"""
