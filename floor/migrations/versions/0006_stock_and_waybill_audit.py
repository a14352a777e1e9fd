"""stock levels and movements, wave stock decisions, waybill changes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa
import floor.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stock_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('on_hand', sa.Integer(), nullable=False),
    sa.Column('low_threshold', sa.Integer(), nullable=True),
    sa.Column('updated_at', floor.db.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('warehouse_id', 'sku', name='uq_stock_items_warehouse_sku')
    )
    op.create_table('stock_movements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('delta', sa.Integer(), nullable=False),
    sa.Column('on_hand_after', sa.Integer(), nullable=False),
    sa.Column('low_threshold_after', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('order_no', sa.String(length=64), nullable=True),
    sa.Column('rma_no', sa.String(length=32), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('by', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=True),
    sa.Column('at', floor.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('stock_movements', schema=None) as batch_op:
        batch_op.create_index('ix_stock_movements_warehouse_sku', ['warehouse_id', 'sku', 'id'], unique=False)

    op.create_table('wave_stock_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('wave_no', sa.String(length=64), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('shortfall', sa.JSON(), nullable=False),
    sa.Column('short_orders', sa.JSON(), nullable=False),
    sa.Column('by', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=True),
    sa.Column('at', floor.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('wave_stock_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wave_stock_decisions_wave_no'), ['wave_no'], unique=False)

    op.create_table('waybill_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('old_waybill_no', sa.String(length=64), nullable=True),
    sa.Column('new_waybill_no', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('by', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=True),
    sa.Column('order_status', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', floor.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('waybill_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_waybill_changes_order_id'), ['order_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('waybill_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_waybill_changes_order_id'))

    op.drop_table('waybill_changes')
    with op.batch_alter_table('wave_stock_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wave_stock_decisions_wave_no'))

    op.drop_table('wave_stock_decisions')
    with op.batch_alter_table('stock_movements', schema=None) as batch_op:
        batch_op.drop_index('ix_stock_movements_warehouse_sku')

    op.drop_table('stock_movements')
    op.drop_table('stock_items')
