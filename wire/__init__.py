"""What a device and a relay agree on: MQTT topics and messages, a breathing pattern's fields and
a session's summary. Both sides import this package and it imports neither, so a field is
defined once and a relay installs without the camera, vision and GPIO stack."""
