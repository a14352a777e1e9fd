"""returns inspection, cameras and recordings

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa
import floor.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cameras',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('camera_id', sa.String(length=64), nullable=False),
    sa.Column('station', sa.String(length=32), nullable=False),
    sa.Column('nvr_host', sa.String(length=255), nullable=True),
    sa.Column('nvr_port', sa.Integer(), nullable=True),
    sa.Column('nvr_channel', sa.Integer(), nullable=True),
    sa.Column('registered_by', sa.String(length=100), nullable=True),
    sa.Column('registered_at', floor.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('camera_id')
    )
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cameras_station'), ['station'], unique=False)

    op.create_table('recordings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('started_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('ends_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('frames', sa.Integer(), nullable=False),
    sa.Column('fps', sa.Double(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('codec', sa.String(length=32), nullable=False),
    sa.Column('keyframes', sa.JSON(), nullable=False),
    sa.Column('registered_by', sa.String(length=100), nullable=True),
    sa.Column('registered_at', floor.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('camera_id', 'path', name='uq_recordings_camera_path')
    )
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.create_index('ix_recordings_camera_start', ['camera_id', 'started_at'], unique=False)

    op.create_table('returns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rma_no', sa.String(length=32), nullable=False),
    sa.Column('trace_code', sa.String(length=32), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('snapshot_id', sa.Integer(), nullable=False),
    sa.Column('warehouse', sa.String(length=32), nullable=False),
    sa.Column('station', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('customer_note', sa.String(length=1000), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('closed_by', sa.String(length=100), nullable=True),
    sa.Column('closed_at', floor.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['snapshot_id'], ['kit_snapshots.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('rma_no'),
    sa.UniqueConstraint('trace_code')
    )
    with op.batch_alter_table('returns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_returns_order_id'), ['order_id'], unique=False)

    op.create_table('inspection_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('return_id', sa.Integer(), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('snapshot_hash', sa.String(length=64), nullable=False),
    sa.Column('suggested_outcome', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('confirmed_outcome', sa.String(length=16), nullable=True),
    sa.Column('confirmed_by', sa.String(length=100), nullable=True),
    sa.Column('confirmed_at', floor.db.UTCDateTime(), nullable=True),
    sa.Column('confirm_note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['return_id'], ['returns.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('return_id')
    )
    op.create_table('return_scans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scan_id', sa.String(length=64), nullable=False),
    sa.Column('return_id', sa.Integer(), nullable=False),
    sa.Column('raw', sa.String(length=600), nullable=False),
    sa.Column('code', sa.String(length=512), nullable=False),
    sa.Column('symbology_id', sa.String(length=8), nullable=True),
    sa.Column('sku', sa.String(length=64), nullable=True),
    sa.Column('lot', sa.String(length=64), nullable=True),
    sa.Column('serial', sa.String(length=64), nullable=True),
    sa.Column('condition', sa.String(length=16), nullable=False),
    sa.Column('photo', sa.String(length=255), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('verdict', sa.String(length=32), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('by', sa.String(length=100), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=True),
    sa.Column('at', floor.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['return_id'], ['returns.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('scan_id')
    )
    with op.batch_alter_table('return_scans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_return_scans_return_id'), ['return_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('return_scans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_return_scans_return_id'))

    op.drop_table('return_scans')
    op.drop_table('inspection_reports')
    with op.batch_alter_table('returns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_returns_order_id'))

    op.drop_table('returns')
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_index('ix_recordings_camera_start')

    op.drop_table('recordings')
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cameras_station'))

    op.drop_table('cameras')
