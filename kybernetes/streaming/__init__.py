"""Wire protocols of Kubernetes streaming (exec, attach, port-forward) shared by the API
server and the kubelet, like upstream's apimachinery httpstream: SPDY/3.1 framing
(spdy.py), the WebSocket channel protocol constants (channels.py) and running a
stream's two directions together (tasks.py)."""
