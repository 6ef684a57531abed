from __future__ import annotations

from pathlib import Path

from garrison.rules import load_files, load_texts

BASE = """
- list: users
  items: [a]
- macro: m
  condition: ka.verb = get
- rule: R
  desc: base
  condition: m
  output: o
  priority: WARNING
  source: k8s_audit
  tags: [k8s]
"""


def test_append_and_override_semantics() -> None:
    override = """
- list: users
  items: [b]
  append: true
- macro: m
  condition: or ka.verb = list
  append: true
- rule: R
  condition: and ka.user.name in (users)
  override: {condition: append, priority: replace}
  priority: ERROR
- rule: R
  tags: [T1609]
  override: {tags: append}
"""
    result = load_texts([("base.yaml", BASE), ("o.yaml", override)])
    assert result.errors == []
    rules = result.ruleset
    assert rules.lists["users"].items == ["a", "b"]
    assert rules.macros["m"].condition == "ka.verb = get or ka.verb = list"
    rule = rules.rules["R"]
    assert rule.condition == "m and ka.user.name in (users)"
    assert rule.priority == "ERROR"
    assert rule.tags == ["k8s", "T1609"]


def test_redefinition_replaces_and_enabled_toggle() -> None:
    again = "- rule: R\n  condition: ka.verb=list\n  output: x\n  priority: INFO\n  source: k8s_audit\n- rule: R\n  enabled: false\n"
    result = load_texts([("a.yaml", BASE), ("b.yaml", again)])
    rule = result.ruleset.rules["R"]
    assert rule.condition == "ka.verb=list" and rule.enabled is False


def test_errors_carry_file_line_and_item() -> None:
    bad = """
- rule: Missing
  condition: ka.verb = get
- list: nolist
  items: [x]
  append: true
- rule: BadPriority
  condition: a
  output: o
  priority: LOUD
- bogus: 1
"""
    result = load_texts([("bad.yaml", bad)])
    text = [str(e) for e in result.errors]
    assert text[0] == "bad.yaml:2 (Missing): a rule needs output, priority"
    assert text[1] == "bad.yaml:4 (nolist): list 'nolist' has no earlier definition to append"
    assert text[2] == "bad.yaml:7 (BadPriority): unknown priority 'LOUD'"
    assert text[3].startswith("bad.yaml:11: unknown item")


def test_yaml_errors_and_unreadable_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("- rule: x\n  condition: [unclosed\n")
    result = load_files([broken, tmp_path / "missing.yaml"])
    text = sorted(str(e) for e in result.errors)
    assert any("broken.yaml:3: YAML parse error" in t for t in text)
    assert any("missing.yaml: cannot read" in t for t in text)


def test_yaml_12_scalars_stay_strings() -> None:
    text = "- list: l\n  items: [=, yes, on, true]\n"
    assert load_texts([("t.yaml", text)]).ruleset.lists["l"].items == ["=", "yes", "on", "true"]


def test_falco_stable_rules_load_unchanged() -> None:
    from tests.conftest import corpus

    root = corpus("falco-rules")
    result = load_files([root / "falco_rules.yaml", root / "falco-incubating_rules.yaml"])
    assert result.errors == []
    assert len(result.ruleset.rules) == 25 + 31
