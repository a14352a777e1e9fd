"""live floor: alerts, leases, warehouse settings, station kinds

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:23:20.427653
"""
from alembic import op
import sqlalchemy as sa
import floor.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('level', sa.String(length=8), nullable=False),
    sa.Column('warehouse', sa.String(length=32), nullable=True),
    sa.Column('order_no', sa.String(length=64), nullable=True),
    sa.Column('station', sa.String(length=32), nullable=True),
    sa.Column('device_id', sa.String(length=64), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('raised_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('acked_by', sa.String(length=100), nullable=True),
    sa.Column('acked_at', floor.db.UTCDateTime(), nullable=True),
    sa.Column('ack_note', sa.String(length=500), nullable=True),
    sa.Column('cleared_at', floor.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('uq_alerts_open_key', ['key'], unique=True, sqlite_where=sa.text('cleared_at IS NULL'), postgresql_where=sa.text('cleared_at IS NULL'))

    op.create_table('event_rooms',
    sa.Column('room', sa.String(length=100), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('room', 'seq')
    )
    op.create_table('leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('expires_at', floor.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='pack'))

    with op.batch_alter_table('warehouses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('settings', sa.JSON(), nullable=False, server_default='{}'))



def downgrade() -> None:
    with op.batch_alter_table('warehouses', schema=None) as batch_op:
        batch_op.drop_column('settings')

    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.drop_column('kind')

    op.drop_table('leases')
    op.drop_table('event_rooms')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('uq_alerts_open_key', sqlite_where=sa.text('cleared_at IS NULL'), postgresql_where=sa.text('cleared_at IS NULL'))

    op.drop_table('alerts')
