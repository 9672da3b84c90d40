"""Broker accounts for the fleet, enforced by mosquitto's dynamic-security plugin.

mosquitto 2.0's ``acl_file`` neither refuses a SUBSCRIBE (a device could join the relay's
``$share`` group and swallow a share of every device's messages) nor ties a client id to an
account (any account could take over another's persistent session). The dynamic-security
plugin does both (FACTS.md), so the fleet's accounts live there:

- a **device** account: username = device id, pinned to client id = device id, with its own
  role naming its own topics literally (``%u`` does not match in 2.0.11's dynsec roles);
- a **relay** account per relay instance, sharing the ``breathe-relay`` role (read what
  devices send, through ``$share/<group>/...`` or directly; write acks, mint results,
  config, commands, inbox answers);
  pinned to ``breathe-relay-<instance>`` when given one;
- an **operator** account for ``breathe relay cmd`` / ``config set``, pinned to
  ``breathe-operator-<username>``: it sends commands and desired config and reads the answers,
  but cannot join the relays' ``$share`` group nor take a relay instance's client id;
- an **admin** account for ``mosquitto_ctrl`` / :class:`LiveAccounts`.

Two ways to apply them: :func:`config_document` writes the plugin's JSON file before the
broker starts (``breathe relay accounts init``), :class:`LiveAccounts` sends the same
commands to a running broker on ``$CONTROL/dynamic-security/v1`` (what ``mosquitto_ctrl``
does), so a new device needs no restart.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from common.config.models import OPERATOR_NAME
from common.errors import BadInput
from wire import protocol

RELAY_ROLE = "breathe-relay"
OPERATOR_ROLE = "breathe-operator"
ADMIN_ROLE = "admin"
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
ITERATIONS = 101  # what mosquitto_ctrl uses

# what a device publishes / reads under its own breathe/v1/<device_id>/ (see protocol.py)
DEVICE_SENDS = (protocol.STATUS, protocol.TELEMETRY, protocol.SESSIONS, protocol.MINT_REQUEST,
                protocol.CONFIG_REPORTED, protocol.REPLY + "/#", "catalog/#",
                protocol.PATTERN_MINT_REQUEST, protocol.RETRACT)
DEVICE_READS = (protocol.ACK, protocol.MINT_RESULT, protocol.CONFIG_DESIRED,
                protocol.CMD + "/#", protocol.INBOX + "/#")
# the relay: everything devices send, through its shared group or directly (command replies)
RELAY_SENDS = (protocol.ACK, protocol.MINT_RESULT, protocol.CONFIG_DESIRED, protocol.CMD + "/#",
               protocol.INBOX + "/#")
# an operator at the CLI: commands and desired config out, replies and config reports in
OPERATOR_SENDS = (protocol.CMD + "/#", protocol.CONFIG_DESIRED)
OPERATOR_READS = (protocol.REPLY + "/#", protocol.CONFIG_REPORTED)


def device_role(device_id: str) -> str:
    return f"breathe-device-{device_id}"


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": True}


def device_acls(device_id: str) -> list[dict[str, Any]]:
    """Literal topics of one device: publish its own, subscribe to (and receive) its own."""
    root = protocol.topic(device_id)  # checks the id: no wildcard can slip in
    acls = [_acl("publishClientSend", f"{root}/{sub}") for sub in DEVICE_SENDS]
    for sub in DEVICE_READS:
        acls += [_acl("subscribePattern", f"{root}/{sub}"),
                 _acl("publishClientReceive", f"{root}/{sub}")]
    return acls


def relay_acls(share_group: str = "relay") -> list[dict[str, Any]]:
    """The relay role: its shared subscriptions, direct reply subscriptions, its answers."""
    root = protocol.TOPIC_ROOT
    acls = []
    for sub in DEVICE_SENDS:  # shared (relay run) or direct (CLI command replies, tools)
        acls += [_acl("subscribePattern", f"$share/{share_group}/{root}/+/{sub}"),
                 _acl("subscribePattern", f"{root}/+/{sub}"),
                 _acl("publishClientReceive", f"{root}/+/{sub}")]
    acls += [_acl("publishClientSend", f"{root}/+/{sub}") for sub in RELAY_SENDS]
    acls += [_acl("unsubscribePattern", "#")]
    return acls


def operator_acls() -> list[dict[str, Any]]:
    """Any device's command and desired-config topics out, their replies and reports in
    (subscribed directly: no ``$share`` pattern, so no share of what the relays must store)."""
    root = protocol.TOPIC_ROOT
    acls = [_acl("publishClientSend", f"{root}/+/{sub}") for sub in OPERATOR_SENDS]
    for sub in OPERATOR_READS:
        acls += [_acl("subscribePattern", f"{root}/+/{sub}"),
                 _acl("publishClientReceive", f"{root}/+/{sub}")]
    return acls + [_acl("unsubscribePattern", "#")]


def operator_client_id(username: str) -> str:
    """The one client id an operator account may use (what the CLI connects with)."""
    if not re.match(OPERATOR_NAME, username):
        raise BadInput(f"operator name {username!r} is not valid (allowed: 1-64 lowercase "
                       "letters, digits, '_', '.' or '-', starting with a letter or digit)")
    return f"breathe-operator-{username}"


def admin_acls() -> list[dict[str, Any]]:
    return [_acl("publishClientSend", "$CONTROL/dynamic-security/#"),
            _acl("publishClientReceive", "$CONTROL/dynamic-security/#"),
            _acl("subscribePattern", "$CONTROL/dynamic-security/#")]


def hashed(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """The plugin's stored form: base64 PBKDF2-HMAC-SHA512 with a 12-byte salt."""
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return {"password": base64.b64encode(digest).decode(),
            "salt": base64.b64encode(salt).decode(), "iterations": ITERATIONS}


@dataclass(frozen=True)
class Account:
    """One broker account: ``kind`` device | relay | operator | admin; ``client_id`` pins it
    (None: any client id, only for admin and development relay accounts)."""

    username: str
    password: str
    kind: str
    client_id: str | None = None

    def roles(self) -> list[str]:
        return {"device": [device_role(self.username)], "relay": [RELAY_ROLE],
                "operator": [OPERATOR_ROLE], "admin": [ADMIN_ROLE]}[self.kind]


def device_account(device_id: str, password: str) -> Account:
    protocol.topic(device_id)  # a valid device id, or ProtocolError
    return Account(device_id, password, "device", client_id=device_id)


def relay_account(username: str, password: str, client_id: str | None = None) -> Account:
    return Account(username, password, "relay", client_id=client_id)


def operator_account(username: str, password: str) -> Account:
    return Account(username, password, "operator", client_id=operator_client_id(username))


def empty_document(share_group: str = "relay") -> dict[str, Any]:
    """A plugin file with the shared roles and no accounts; deny by default."""
    return {"clients": [], "groups": [],
            "roles": [{"rolename": RELAY_ROLE, "acls": relay_acls(share_group)},
                      {"rolename": OPERATOR_ROLE, "acls": operator_acls()},
                      {"rolename": ADMIN_ROLE, "acls": admin_acls()}],
            "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False,
                                 "subscribe": False, "unsubscribe": True}}


def add_to_document(document: dict[str, Any], account: Account) -> dict[str, Any]:
    """Add (or replace) ``account`` in a plugin file's content; a device gets its role."""
    client: dict[str, Any] = {"username": account.username, **hashed(account.password),
                              "roles": [{"rolename": r} for r in account.roles()]}
    if account.client_id is not None:
        client["clientid"] = account.client_id
    document["clients"] = [c for c in document["clients"] if c["username"] != account.username]
    document["clients"].append(client)
    if account.kind == "device":
        role = device_role(account.username)
        document["roles"] = [r for r in document["roles"] if r["rolename"] != role]
        document["roles"].append({"rolename": role, "acls": device_acls(account.username)})
    roles = [r["rolename"] for r in document["roles"]]
    if account.kind == "operator" and OPERATOR_ROLE not in roles:  # a file from before operators
        document["roles"].append({"rolename": OPERATOR_ROLE, "acls": operator_acls()})
    return document


def read_document(path: os.PathLike[str] | str) -> dict[str, Any]:
    with open(path) as source:
        return json.load(source)


def write_document(document: dict[str, Any], path: os.PathLike[str] | str) -> None:
    """The plugin's file (read at broker start; the running plugin rewrites it itself)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as out:
        json.dump(document, out, indent=1)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


@dataclass
class Fleet:
    """All accounts of one broker, rendered as the plugin's JSON file."""

    share_group: str = "relay"
    accounts: list[Account] = field(default_factory=list)

    def add(self, account: Account) -> Account:
        self.accounts = [a for a in self.accounts if a.username != account.username]
        self.accounts.append(account)
        return account

    def document(self) -> dict[str, Any]:
        document = empty_document(self.share_group)
        for account in self.accounts:
            add_to_document(document, account)
        return document

    def write(self, path: os.PathLike[str] | str) -> None:
        write_document(self.document(), path)


def commands_for(account: Account) -> list[dict[str, Any]]:
    """The ``$CONTROL`` commands that create ``account`` on a running broker."""
    commands: list[dict[str, Any]] = []
    if account.kind == "device":
        role = device_role(account.username)
        commands.append({"command": "createRole", "rolename": role})
        commands += [{"command": "addRoleACL", "rolename": role, **acl}
                     for acl in device_acls(account.username)]
    if account.kind == "operator":  # shared by operators: "already exists" is fine
        commands.append({"command": "createRole", "rolename": OPERATOR_ROLE,
                         "acls": operator_acls()})
    client: dict[str, Any] = {"command": "createClient", "username": account.username,
                              "password": account.password,
                              "roles": [{"rolename": r} for r in account.roles()]}
    if account.client_id is not None:
        client["clientid"] = account.client_id
    commands.append(client)
    return commands


class AccountsError(RuntimeError):
    """The broker refused an account command (the message says which and why)."""


class LiveAccounts:
    """Creates accounts on a running broker through its admin account (a connected paho
    client, subscribed here to the control response topic)."""

    def __init__(self, client: Any, timeout: float = 5.0) -> None:
        self.client = client
        self.timeout = timeout
        self.answers: queue.Queue[bytes] = queue.Queue()
        response = f"{CONTROL_TOPIC}/response"
        client.message_callback_add(response, lambda _c, _u, m: self.answers.put(m.payload))
        client.subscribe(response, qos=1)

    def run(self, commands: Iterable[dict[str, Any]]) -> None:
        batch = list(commands)
        tag = uuid.uuid4().hex[:8]
        for i, command in enumerate(batch):
            command["correlationData"] = f"{tag}-{i}"
        self.client.publish(CONTROL_TOPIC, json.dumps({"commands": batch}), qos=1)
        try:
            answer = json.loads(self.answers.get(timeout=self.timeout))
        except queue.Empty:
            raise AccountsError(f"the broker did not answer on {CONTROL_TOPIC} within "
                                f"{self.timeout:g} s (is the dynamic-security plugin loaded, "
                                "and is this the admin account?)") from None
        errors = [f"{r.get('command')}: {r['error']}" for r in answer.get("responses", [])
                  if r.get("error") and r.get("error") != "Role already exists"]
        if errors:
            raise AccountsError("the broker refused: " + "; ".join(errors))

    def add(self, account: Account) -> None:
        self.run(commands_for(account))
