"""The engine adapters and protocol of lmdrive's Python worker."""

# PROTOCOL names the runner protocol this worker speaks (driver/protocol.go).
PROTOCOL = "lmdrive-runner/1"
WORKER_VERSION = "0.1.0"
