"""orders and SKU catalogue per warehouse

An order is (warehouse, channel, order_no): another warehouse's same number is another order.
The SKU catalogue (skus, sku_barcodes) is kept per warehouse. The catalogue is what the orders'
kits said, so each warehouse's is rebuilt from its own orders (kit snapshots, then the current
kits, oldest first: the last word wins, as when the orders came in). A SKU no order names any
more stays known in every warehouse, as it was before. Open alerts are unique per warehouse and
key (their keys name orders).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""
from __future__ import annotations

from typing import Any

from alembic import op
import sqlalchemy as sa
import floor.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

Catalogue = dict[int, tuple[dict[str, str], dict[str, str]]]   # warehouse -> (names, barcodes)


def _lines(raw: Any) -> list[dict[str, Any]]:
    return [line for line in raw if isinstance(line, dict)] if isinstance(raw, list) else []


def _remember(catalogue: Catalogue, warehouse_id: int, lines: Any) -> None:
    names, barcodes = catalogue.setdefault(warehouse_id, ({}, {}))
    for line in _lines(lines):
        sku = line.get("sku")
        if not isinstance(sku, str) or not sku:
            continue
        names[sku] = str(line.get("name") or "")
        for code in line.get("barcodes") or []:
            if isinstance(code, str) and code:
                barcodes[code] = sku


def _catalogue_per_warehouse(conn: Any) -> Catalogue:
    orders = sa.table('orders', sa.column('id'), sa.column('warehouse_id'), sa.column('lines', sa.JSON),
                      sa.column('updated_at', floor.db.UTCDateTime()))
    snaps = sa.table('kit_snapshots', sa.column('id'), sa.column('order_id'), sa.column('lines', sa.JSON),
                     sa.column('created_at', floor.db.UTCDateTime()))
    skus = sa.table('skus', sa.column('id'), sa.column('code'), sa.column('name'))
    barcodes = sa.table('sku_barcodes', sa.column('barcode'), sa.column('sku_id'))
    warehouses = sa.table('warehouses', sa.column('id'))

    history = [(r.created_at, 0, r.id, r.warehouse_id, r.lines) for r in conn.execute(
        sa.select(snaps.c.id, snaps.c.lines, snaps.c.created_at, orders.c.warehouse_id)
        .join(orders, orders.c.id == snaps.c.order_id))]
    history += [(r.updated_at, 1, r.id, r.warehouse_id, r.lines) for r in conn.execute(
        sa.select(orders.c.id, orders.c.warehouse_id, orders.c.lines, orders.c.updated_at))]
    catalogue: Catalogue = {}
    for _at, _kind, _id, warehouse_id, lines in sorted(history, key=lambda h: h[:3]):
        _remember(catalogue, warehouse_id, lines)

    # What the old shared catalogue knows that no order says any more: every warehouse keeps it.
    code_by_id = dict(conn.execute(sa.select(skus.c.id, skus.c.code)).all())
    known = {sku for names, _codes in catalogue.values() for sku in names}
    orphans = {r.code: r.name for r in conn.execute(sa.select(skus.c.code, skus.c.name))
               if r.code not in known}
    if orphans:
        orphan_codes = [(r.barcode, code_by_id[r.sku_id]) for r in conn.execute(
            sa.select(barcodes.c.barcode, barcodes.c.sku_id)) if code_by_id.get(r.sku_id) in orphans]
        for warehouse_id in conn.execute(sa.select(warehouses.c.id)).scalars():
            names, codes = catalogue.setdefault(warehouse_id, ({}, {}))
            names.update(orphans)
            for barcode, sku in orphan_codes:
                codes.setdefault(barcode, sku)
    return catalogue


def _create_catalogue_tables(per_warehouse: bool) -> tuple[sa.Table, sa.Table]:
    if per_warehouse:
        skus = op.create_table('skus',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('warehouse_id', sa.Integer(), nullable=False),
            sa.Column('code', sa.String(length=64), nullable=False),
            sa.Column('name', sa.String(length=200), nullable=False),
            sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], ),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('warehouse_id', 'code', name='uq_skus_warehouse_code'))
        barcodes = op.create_table('sku_barcodes',
            sa.Column('barcode', sa.String(length=128), nullable=False),
            sa.Column('warehouse_id', sa.Integer(), nullable=False),
            sa.Column('sku_id', sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], ),
            sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], ),
            sa.PrimaryKeyConstraint('barcode', 'warehouse_id'))
    else:
        skus = op.create_table('skus',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('code', sa.String(length=64), nullable=False),
            sa.Column('name', sa.String(length=200), nullable=False),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('code'))
        barcodes = op.create_table('sku_barcodes',
            sa.Column('barcode', sa.String(length=128), nullable=False),
            sa.Column('sku_id', sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], ),
            sa.PrimaryKeyConstraint('barcode'))
    with op.batch_alter_table('sku_barcodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sku_barcodes_sku_id'), ['sku_id'], unique=False)
    assert skus is not None and barcodes is not None
    return skus, barcodes


def _drop_catalogue_tables() -> None:
    with op.batch_alter_table('sku_barcodes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sku_barcodes_sku_id'))
    op.drop_table('sku_barcodes')
    op.drop_table('skus')


def upgrade() -> None:
    conn = op.get_bind()
    catalogue = _catalogue_per_warehouse(conn)
    # Nothing but sku_barcodes refers to skus: the two tables are rebuilt, not altered.
    _drop_catalogue_tables()
    skus, barcodes = _create_catalogue_tables(per_warehouse=True)
    for warehouse_id, (names, codes) in sorted(catalogue.items()):
        ids: dict[str, int] = {}
        for code, name in sorted(names.items()):
            ids[code] = conn.execute(sa.insert(skus).values(
                warehouse_id=warehouse_id, code=code, name=name[:200])).inserted_primary_key[0]
        rows = [{"warehouse_id": warehouse_id, "barcode": barcode, "sku_id": ids[sku]}
                for barcode, sku in sorted(codes.items()) if sku in ids]
        if rows:
            conn.execute(sa.insert(barcodes), rows)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint('uq_orders_channel_order_no', type_='unique')
        batch_op.create_unique_constraint('uq_orders_warehouse_channel_order_no',
                                          ['warehouse_id', 'channel', 'order_no'])
    # Alert keys name orders (status_sla:<order_no>:...): one open alert per key and warehouse.
    _open_alert_index('uq_alerts_open_key', 'uq_alerts_open_warehouse_key', ['warehouse', 'key'])


def _open_alert_index(old: str, new: str, columns: list[str]) -> None:
    where = sa.text('cleared_at IS NULL')
    op.drop_index(old, table_name='alerts', sqlite_where=where, postgresql_where=where)
    op.create_index(new, 'alerts', columns, unique=True, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    conn = op.get_bind()
    orders = sa.table('orders', sa.column('channel'), sa.column('order_no'))
    clash = conn.execute(sa.select(orders.c.channel, orders.c.order_no)
                         .group_by(orders.c.channel, orders.c.order_no)
                         .having(sa.func.count() > 1).limit(1)).first()
    if clash is not None:
        raise RuntimeError(f"Order {clash.order_no} ({clash.channel}) exists in several warehouses; "
                           "one shared numbering cannot hold both.")
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint('uq_orders_warehouse_channel_order_no', type_='unique')
        batch_op.create_unique_constraint('uq_orders_channel_order_no', ['channel', 'order_no'])
    _open_alert_index('uq_alerts_open_warehouse_key', 'uq_alerts_open_key', ['key'])

    # One shared catalogue again: the later warehouse's name and mapping win.
    old_skus = sa.table('skus', sa.column('id'), sa.column('warehouse_id'), sa.column('code'),
                        sa.column('name'))
    old_barcodes = sa.table('sku_barcodes', sa.column('warehouse_id'), sa.column('barcode'),
                            sa.column('sku_id'))
    names: dict[str, str] = {}
    codes: dict[str, str] = {}
    code_of: dict[int, str] = {}
    for row in conn.execute(sa.select(old_skus).order_by(old_skus.c.warehouse_id, old_skus.c.id)):
        names[row.code], code_of[row.id] = row.name, row.code
    for row in conn.execute(sa.select(old_barcodes).order_by(old_barcodes.c.warehouse_id)):
        codes[row.barcode] = code_of[row.sku_id]
    _drop_catalogue_tables()
    skus, barcodes = _create_catalogue_tables(per_warehouse=False)
    ids = {code: conn.execute(sa.insert(skus).values(code=code, name=name)).inserted_primary_key[0]
           for code, name in sorted(names.items())}
    rows = [{"barcode": barcode, "sku_id": ids[sku]} for barcode, sku in sorted(codes.items())]
    if rows:
        conn.execute(sa.insert(barcodes), rows)
