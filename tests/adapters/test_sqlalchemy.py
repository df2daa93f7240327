"""SQLAlchemy over a guarded connection (`creator=`): statements pass the gate, refusals
are SQLAlchemy's own database errors, and masked rows come back masked."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import subguard
from subguard.adapters import dbapi

from .conftest import SCHEMA_SQL, TAGS, fill

sqlalchemy = pytest.importorskip("sqlalchemy")


@pytest.fixture
def sa_engine(tmp_path: Path, engine: subguard.Engine) -> sqlalchemy.Engine:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as setup:
        setup.executescript(SCHEMA_SQL)
        fill(setup)
    setup.close()

    def connect() -> dbapi.GuardedConnection:
        return dbapi.guard(
            sqlite3.connect(path), engine, subject="ci-bot",
            resource={"name": "shop", "kind": "sqlite"}, session="sa-1", tags=TAGS,
        )

    return sqlalchemy.create_engine("sqlite://", creator=connect)


def test_queries_run_through_the_gate_and_come_back_masked(sa_engine: sqlalchemy.Engine) -> None:
    with sa_engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text("SELECT name, email FROM users WHERE id = :id"), {"id": 1}).all()
        assert [tuple(r) for r in rows] == [("Ann Lee", "****@example.com")]
        total = conn.execute(sqlalchemy.text("SELECT sum(total) FROM orders")).scalar()
        assert total == pytest.approx(141.75)


def test_refusals_are_sqlalchemy_database_errors(sa_engine: sqlalchemy.Engine) -> None:
    with sa_engine.connect() as conn:
        with pytest.raises(sqlalchemy.exc.DatabaseError) as caught:
            conn.execute(sqlalchemy.text("DROP TABLE orders"))
        assert isinstance(caught.value.orig, subguard.Denied)
        conn.rollback()
        with pytest.raises(sqlalchemy.exc.DatabaseError) as held:
            conn.execute(sqlalchemy.text("DELETE FROM orders"))
        assert isinstance(held.value.orig, subguard.ApprovalRequired)
        conn.rollback()
        assert conn.execute(sqlalchemy.text("SELECT count(*) FROM orders")).scalar() == 4


def test_orm_style_table_reflection_and_insert(sa_engine: sqlalchemy.Engine) -> None:
    meta = sqlalchemy.MetaData()
    orders = sqlalchemy.Table("orders", meta, autoload_with=sa_engine)
    with sa_engine.begin() as conn:
        conn.execute(orders.insert().values(id=50, user_id=1, total=3.5, status="open"))
    with sa_engine.connect() as conn:
        assert conn.execute(sqlalchemy.select(orders.c.status).where(orders.c.id == 50)).scalar() == "open"
