"""Migrations: applied to an empty database they give exactly the models' schema."""

from __future__ import annotations

from importlib import resources

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from worker import schema
from worker.domain.models import Base
from worker.schema import MIGRATIONS_DIR


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


def test_migrated_schema_matches_the_models(empty_database_url: str) -> None:
    engine = schema.engine_for(empty_database_url)
    try:
        schema.upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "include_name": _include_name,
                    "compare_type": True,
                    "compare_server_default": True,
                },
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()

    assert differences == []


def test_every_model_table_exists_after_migrating(engine: sa.Engine) -> None:
    tables = set(sa.inspect(engine).get_table_names())

    assert set(Base.metadata.tables) <= tables
    assert {"procrastinate_jobs", "procrastinate_events", "procrastinate_workers"} <= tables


def test_second_upgrade_is_a_no_op(empty_database_url: str) -> None:
    engine = schema.engine_for(empty_database_url)
    try:
        first = schema.upgrade(engine)
        with engine.connect() as connection:
            before = connection.execute(sa.text("SELECT count(*) FROM pg_class")).scalar_one()
        second = schema.upgrade(engine)
        with engine.connect() as connection:
            after = connection.execute(sa.text("SELECT count(*) FROM pg_class")).scalar_one()
    finally:
        engine.dispose()

    assert first.at_head and second.at_head
    assert second.current == first.current
    assert after == before


def test_pgvector_extension_is_created(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        distance = connection.execute(
            sa.text("SELECT '[1,0]'::vector <=> '[0,1]'::vector")
        ).scalar_one()

    assert distance == 1.0


def test_procrastinate_schema_is_the_pinned_version() -> None:
    vendored = (MIGRATIONS_DIR / "sql" / "procrastinate_03.10.00_schema.sql").read_text()
    installed = (resources.files("procrastinate.sql") / "schema.sql").read_text()

    assert vendored == installed, (
        "the installed procrastinate differs from the pinned 3.10.0 schema: add a migration "
        "running its shipped migration files before upgrading"
    )


def test_procrastinate_can_defer_and_fetch_on_the_migrated_schema(database_url: str) -> None:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=database_url))

    @app.task(name="tests.noop", queue="default")
    def noop() -> None:
        return None

    with app.open():
        job_id = noop.defer()
        status = app.job_manager.get_job_status(job_id)

    assert status == procrastinate.jobs.Status.TODO


def test_check_constraints_and_foreign_key_actions_match_the_models(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    for table in Base.metadata.sorted_tables:
        expected_checks = {
            str(c.name) for c in table.constraints if isinstance(c, sa.CheckConstraint)
        }
        actual_checks = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert actual_checks == expected_checks, table.name

        expected_fks = {(str(fk.name), fk.ondelete) for fk in table.foreign_key_constraints}
        actual_fks = {
            (fk["name"], fk["options"].get("ondelete"))
            for fk in inspector.get_foreign_keys(table.name)
        }
        assert actual_fks == expected_fks, table.name
