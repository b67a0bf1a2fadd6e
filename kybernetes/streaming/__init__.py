"""Wire protocols of Kubernetes streaming (exec, attach, port-forward) shared by the API
server and the kubelet, like upstream's apimachinery httpstream: SPDY/3.1 framing
(spdy.py) and the WebSocket channel protocol constants (channels.py)."""
