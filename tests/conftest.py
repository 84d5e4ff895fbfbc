import os

# Tests never reach a model hub: everything they load, they built and saved
# themselves.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('HF_HUB_DISABLE_TELEMETRY', '1')
