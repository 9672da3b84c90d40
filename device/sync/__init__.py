"""Sync with the fleet over MQTT: the device side of issue 6.

``protocol`` (the wire schema, shared with the relay), ``client`` (:class:`SyncClient`, the
connection and its worker thread), ``connection`` (paho glue), ``outbox_sender`` (drain the
SQLite outbox, clear on the relay's ack), ``fleet`` (status, telemetry, reported config),
``fleet_config`` (config from the fleet, checked by the settings models), ``commands``
(``cmd/<name>`` and the ``DeviceControls`` seam) and ``mint`` (mint requests and results).
"""
