"""The ground the device and the relay stand on: error types, the settings file's schema and
loading, log redaction. Imports nothing from ``device``, ``webui`` or ``relay``."""
