"""results: the input check's verdict (status not_assessable, its reasons and advice).

A clip the input check refuses is stored with ``status`` ``not_assessable`` (no probability
or decision), ``reasons`` (JSON list of the check's reason codes) and ``advice`` (the
sentence for the clinician). Rows stored before keep their status (scored or failed; every
clip was scored unchecked then) and get an empty ``reasons`` list. ``status`` gains an
index (``GET /v1/results?status=...``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("reasons", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("advice", sa.Text(), nullable=True))
    results = sa.table("results", sa.column("reasons", sa.JSON()))
    op.execute(results.update().values(reasons=[]))
    op.create_index("ix_results_status", "results", ["status"])


def downgrade() -> None:
    op.drop_index("ix_results_status", "results")
    # the old schema knows no not_assessable: such a row becomes a failure with that reason
    op.execute(
        "UPDATE results SET status = 'failed', reason = 'not_assessable' "
        "WHERE status = 'not_assessable'"
    )
    with op.batch_alter_table("results") as batch:
        batch.drop_column("advice")
        batch.drop_column("reasons")
