"""device scanner profile (what a keyboard-wedge scanner types for the GS1 separator); scans by
device (a double read repeats the device's previous verdict)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa
import floor.db


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scanner_profile', sa.JSON(), nullable=True))
    with op.batch_alter_table('scan_events', schema=None) as batch_op:
        batch_op.create_index('ix_scan_events_device_id_id', ['device_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('scan_events', schema=None) as batch_op:
        batch_op.drop_index('ix_scan_events_device_id_id')
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('scanner_profile')
