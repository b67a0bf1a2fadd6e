"""The channel protocol of remote commands: over WebSocket each binary message starts
with its channel byte; over SPDY each channel is a stream named by `streamtype`."""

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255  # v5: [255, channel] half-closes that channel (only stdin is ever closed)
WS_V5, WS_V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
SPDY_V4 = "v4.channel.k8s.io"
PORTFORWARD_SPDY = "portforward.k8s.io"
PORTFORWARD_WS_TUNNEL = "SPDY/3.1+portforward.k8s.io"  # SPDY frames inside WebSocket binary messages
STREAM_TYPES = {"stdin": STDIN, "stdout": STDOUT, "stderr": STDERR, "error": ERROR, "resize": RESIZE}
SUCCESS = b'{"metadata":{},"status":"Success"}'
