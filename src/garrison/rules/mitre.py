"""Reads MITRE ATT&CK and Microsoft Threat Matrix ids out of Falco-style rule tags."""

from __future__ import annotations

import re

from garrison.events.alert import Mitre

TACTICS = {
    "reconnaissance": "TA0043",
    "resource_development": "TA0042",
    "initial_access": "TA0001",
    "execution": "TA0002",
    "persistence": "TA0003",
    "privilege_escalation": "TA0004",
    "defense_evasion": "TA0005",
    "credential_access": "TA0006",
    "discovery": "TA0007",
    "lateral_movement": "TA0008",
    "collection": "TA0009",
    "command_and_control": "TA0011",
    "exfiltration": "TA0010",
    "impact": "TA0040",
}
_TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
_TACTIC_ID = re.compile(r"^TA\d{4}$")
_MATRIX = re.compile(r"^MS-TA\d{4}$")


def mitre_from_tags(tags: list[str]) -> Mitre:
    tactics: list[str] = []
    techniques: list[str] = []
    matrix: list[str] = []
    for tag in tags:
        if _TECHNIQUE.match(tag):
            techniques.append(tag)
        elif _TACTIC_ID.match(tag):
            tactics.append(tag)
        elif _MATRIX.match(tag):
            matrix.append(tag)
        elif tag.startswith("mitre_"):
            tactic = TACTICS.get(tag[len("mitre_") :])
            if tactic:
                tactics.append(tactic)
    return Mitre(
        tactics=tuple(dict.fromkeys(tactics)),
        techniques=tuple(dict.fromkeys(techniques)),
        threat_matrix=tuple(dict.fromkeys(matrix)),
    )
