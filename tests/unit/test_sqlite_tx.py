from __future__ import annotations

import sqlite3

import pytest

from garrison.sqlite_tx import immediate


def test_commit_on_success_and_rollback_on_error() -> None:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("CREATE TABLE t (v INTEGER)")
    with immediate(db):
        db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), immediate(db):
        db.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("half-way")
    assert [r[0] for r in db.execute("SELECT v FROM t")] == [1]
    assert not db.in_transaction
