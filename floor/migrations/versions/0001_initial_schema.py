"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 02:05:33.702070
"""
from alembic import op
import sqlalchemy as sa
import floor.db


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # orders and kit_snapshots refer to each other: PostgreSQL gets that key once both exist.
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table('devices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('station', sa.String(length=32), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('last_seen_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('last_code', sa.String(length=512), nullable=True),
    sa.Column('last_code_at', floor.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('device_id')
    )
    op.create_table('event_counter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('event_log',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('rooms', sa.JSON(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('at', floor.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=False),
    sa.Column('at', floor.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_failures_username'), ['username'], unique=False)

    op.create_table('skus',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('warehouses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=True),
    sa.Column('created_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', floor.db.UTCDateTime(), nullable=True),
    sa.Column('last_used_at', floor.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest')
    )
    op.create_table('sku_barcodes',
    sa.Column('barcode', sa.String(length=128), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], ),
    sa.PrimaryKeyConstraint('barcode')
    )
    with op.batch_alter_table('sku_barcodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sku_barcodes_sku_id'), ['sku_id'], unique=False)

    op.create_table('stations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', floor.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    op.create_table('waves',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('wave_no', sa.String(length=64), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=True),
    sa.Column('station_id', sa.Integer(), nullable=True),
    sa.Column('created_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], ),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('wave_no')
    )
    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('order_no', sa.String(length=64), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('waybill_no', sa.String(length=64), nullable=True),
    sa.Column('customer', sa.JSON(), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('lines_hash', sa.String(length=64), nullable=False),
    sa.Column('wave_id', sa.Integer(), nullable=True),
    sa.Column('snapshot_id', sa.Integer(), nullable=True),
    sa.Column('created_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', floor.db.UTCDateTime(), nullable=False),
    *([sa.ForeignKeyConstraint(['snapshot_id'], ['kit_snapshots.id'], name='fk_orders_snapshot_id')]
      if sqlite else []),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], ),
    sa.ForeignKeyConstraint(['wave_id'], ['waves.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'order_no', name='uq_orders_channel_order_no'),
    sa.UniqueConstraint('waybill_no')
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_order_no'), ['order_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_wave_id'), ['wave_id'], unique=False)

    op.create_table('kit_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('created_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id', 'version', name='uq_snapshot_order_version')
    )
    with op.batch_alter_table('kit_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kit_snapshots_order_id'), ['order_id'], unique=False)

    op.create_table('status_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('by', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=True),
    sa.Column('station', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('seq')
    )
    with op.batch_alter_table('status_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_status_events_order_id'), ['order_id'], unique=False)

    op.create_table('pack_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('snapshot_id', sa.Integer(), nullable=False),
    sa.Column('station_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('waived', sa.JSON(), nullable=False),
    sa.Column('opened_by', sa.String(length=100), nullable=False),
    sa.Column('opened_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('closed_at', floor.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['snapshot_id'], ['kit_snapshots.id'], ),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pack_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pack_sessions_order_id'), ['order_id'], unique=False)
        batch_op.create_index('uq_pack_session_open_order', ['order_id'], unique=True, sqlite_where=sa.text("state = 'open'"), postgresql_where=sa.text("state = 'open'"))

    op.create_table('snapshot_skus',
    sa.Column('snapshot_id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['snapshot_id'], ['kit_snapshots.id'], ),
    sa.PrimaryKeyConstraint('snapshot_id', 'sku')
    )
    with op.batch_alter_table('snapshot_skus', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_snapshot_skus_sku'), ['sku'], unique=False)

    op.create_table('overrides',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('scan_id', sa.String(length=64), nullable=False),
    sa.Column('refused_code', sa.String(length=32), nullable=False),
    sa.Column('reason_code', sa.String(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=True),
    sa.Column('waived', sa.JSON(), nullable=False),
    sa.Column('by', sa.String(length=100), nullable=False),
    sa.Column('at', floor.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['pack_sessions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('scan_id')
    )
    with op.batch_alter_table('overrides', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_overrides_session_id'), ['session_id'], unique=False)

    op.create_table('pack_cursors',
    sa.Column('station_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', floor.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['pack_sessions.id'], ),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], ),
    sa.PrimaryKeyConstraint('station_id', 'device_id')
    )
    op.create_table('scan_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scan_id', sa.String(length=64), nullable=False),
    sa.Column('station', sa.String(length=32), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('by', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('code', sa.String(length=512), nullable=False),
    sa.Column('symbology_id', sa.String(length=4), nullable=True),
    sa.Column('at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('received_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('verdict', sa.String(length=32), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('session_id', sa.Integer(), nullable=True),
    sa.Column('line_no', sa.Integer(), nullable=True),
    sa.Column('sku', sa.String(length=64), nullable=True),
    sa.Column('lot', sa.String(length=64), nullable=True),
    sa.Column('serial', sa.String(length=64), nullable=True),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['session_id'], ['pack_sessions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('scan_id')
    )
    with op.batch_alter_table('scan_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scan_events_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_scan_events_session_id'), ['session_id'], unique=False)

    if not sqlite:
        op.create_foreign_key('fk_orders_snapshot_id', 'orders', 'kit_snapshots', ['snapshot_id'], ['id'])
    op.bulk_insert(sa.table('event_counter', sa.column('id', sa.Integer), sa.column('last_seq', sa.Integer)),
                   [{'id': 1, 'last_seq': 0}])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint('fk_orders_snapshot_id', 'orders', type_='foreignkey')
    with op.batch_alter_table('scan_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scan_events_session_id'))
        batch_op.drop_index(batch_op.f('ix_scan_events_order_id'))

    op.drop_table('scan_events')
    op.drop_table('pack_cursors')
    with op.batch_alter_table('overrides', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_overrides_session_id'))

    op.drop_table('overrides')
    with op.batch_alter_table('snapshot_skus', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_snapshot_skus_sku'))

    op.drop_table('snapshot_skus')
    with op.batch_alter_table('pack_sessions', schema=None) as batch_op:
        batch_op.drop_index('uq_pack_session_open_order', sqlite_where=sa.text("state = 'open'"), postgresql_where=sa.text("state = 'open'"))
        batch_op.drop_index(batch_op.f('ix_pack_sessions_order_id'))

    op.drop_table('pack_sessions')
    with op.batch_alter_table('status_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_status_events_order_id'))

    op.drop_table('status_events')
    with op.batch_alter_table('kit_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kit_snapshots_order_id'))

    op.drop_table('kit_snapshots')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_wave_id'))
        batch_op.drop_index(batch_op.f('ix_orders_order_no'))

    op.drop_table('orders')
    op.drop_table('waves')
    op.drop_table('users')
    op.drop_table('stations')
    with op.batch_alter_table('sku_barcodes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sku_barcodes_sku_id'))

    op.drop_table('sku_barcodes')
    op.drop_table('api_tokens')
    op.drop_table('warehouses')
    op.drop_table('skus')
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_failures_username'))

    op.drop_table('login_failures')
    op.drop_table('event_log')
    op.drop_table('event_counter')
    op.drop_table('devices')
