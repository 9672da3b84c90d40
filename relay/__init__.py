"""The cloud relay (``breathe relay``): the fleet's side of the MQTT link.

It shares only the wire schema (:mod:`wire.protocol`) with the device. Layout:
``validate`` (every inbound message checked, pure), ``consumer`` (shared subscriptions →
batches stored → acks), ``store`` (SQLite or PostgreSQL, one SQL), ``minting`` (mint requests →
tokens through ``chain``), ``registry`` and ``commands`` (what the operator's CLI does),
``service`` (one relay instance), ``mqtt`` (broker connections), ``fleetsim`` (simulated
devices and relay processes for the tests and ``scripts/bench-relay``).
"""
