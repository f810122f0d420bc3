"""The ground-truth corpus, part three: views, functions, triggers, materialized views, data
fixes, renames, drops, storage, schemas, partitions, a billing feature and the id widening."""

from __future__ import annotations

from bench.ground_truth_corpus import Change, notx, tx

# fmt: off
OBJECTS = [
    tx("create_user_order_stats", """
CREATE VIEW user_order_stats AS
SELECT user_id, count(*) AS orders FROM orders GROUP BY user_id;"""),
    tx("replace_user_order_stats", """
CREATE OR REPLACE VIEW user_order_stats AS
SELECT user_id, count(*) AS orders, max(placed_at) AS last_order_at
  FROM orders GROUP BY user_id;"""),
    tx("drop_order_totals", "DROP VIEW order_totals;"),
    tx("rename_user_order_stats", "ALTER VIEW user_order_stats RENAME TO user_orders_summary;"),
    tx("rename_orders_status_index", "ALTER INDEX orders_status RENAME TO orders_status_idx;"),
    tx("rename_reviews_rating_check",
       "ALTER TABLE reviews RENAME CONSTRAINT reviews_rating_range TO reviews_rating_1_to_5;"),
    tx("rename_wishlists", "ALTER TABLE wishlists RENAME TO saved_products;"),
    tx("rename_saved_products_sequence",
       "ALTER SEQUENCE wishlists_position_seq RENAME TO saved_products_position_seq;"),
    tx("rename_users_trigger",
       "ALTER TRIGGER users_set_updated_at ON users RENAME TO users_touch_updated_at;"),
    tx("disable_products_trigger", "ALTER TABLE products DISABLE TRIGGER products_set_updated_at;"),
    tx("enable_products_trigger", "ALTER TABLE products ENABLE TRIGGER products_set_updated_at;"),
    tx("raise_all_prices", "UPDATE products SET price = price * 1.05;"),
    tx("delete_old_sessions",
       "DELETE FROM sessions WHERE created_at < now() - interval '30 days';"),
    tx("fix_review_titles", "UPDATE reviews SET title = initcap(title) WHERE title IS NOT NULL;"),
    tx("default_brand", """
INSERT INTO brands (name) VALUES ('Generic');
UPDATE products SET brand_id = (SELECT min(id) FROM brands) WHERE brand_id IS NULL;"""),
    tx("backfill_orders_total", """
UPDATE orders o SET total = s.total
  FROM (SELECT order_id, sum(quantity * unit_price) AS total FROM order_items GROUP BY order_id) s
 WHERE s.order_id = o.id;"""),
    tx("drop_users_trigger", "DROP TRIGGER users_touch_updated_at ON users;"),
    tx("orders_audit_trigger", """
CREATE FUNCTION audit_order_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_events (action, subject_type, subject_id) VALUES (TG_OP, 'order', NEW.id);
    RETURN NEW;
END
$$;
CREATE TRIGGER orders_audit AFTER UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION audit_order_change();"""),
    tx("mark_first_orders_migrated", "UPDATE orders SET notes = 'migrated' WHERE id <= 100;"),
    tx("drop_orders_audit_trigger", "DROP TRIGGER orders_audit ON orders;"),
    tx("drop_audit_order_change", "DROP FUNCTION audit_order_change();"),
    tx("drop_daily_sales", "DROP MATERIALIZED VIEW daily_sales;"),
    tx("create_product_ratings", """
CREATE MATERIALIZED VIEW product_ratings AS
SELECT product_id, avg(rating) AS rating, count(*) AS reviews FROM reviews GROUP BY product_id;"""),
    tx("refresh_product_ratings", "REFRESH MATERIALIZED VIEW product_ratings;"),
    tx("drop_user_orders_summary", "DROP VIEW user_orders_summary;"),
    tx("products_tenant_no_default", "ALTER TABLE products ALTER COLUMN tenant_id DROP DEFAULT;"),
    tx("drop_current_tenant", "DROP FUNCTION current_tenant();"),
    tx("drop_orders_status_index", "DROP INDEX orders_status_idx;"),
    notx("drop_products_category_index", "DROP INDEX CONCURRENTLY products_category_id;"),
    notx("index_orders_paid_at", "CREATE INDEX CONCURRENTLY orders_paid_at ON orders (paid_at);"),
    notx("reindex_orders_paid_at", "REINDEX INDEX CONCURRENTLY orders_paid_at;"),
    tx("reindex_coupons", "REINDEX TABLE coupons;"),
    tx("index_sessions_token", "CREATE INDEX sessions_token ON sessions (token);"),
    tx("index_unread_notifications",
       "CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;"),
]
# fmt: on

# fmt: off
WIDENING = [
    tx("users_id_bigint", "ALTER TABLE users ALTER COLUMN id TYPE bigint;"),
    tx("sessions_user_id_bigint", "ALTER TABLE sessions ALTER COLUMN user_id TYPE bigint;"),
    tx("drop_users_bio", "ALTER TABLE users DROP COLUMN bio;"),
    tx("drop_orders_ip_address", "ALTER TABLE orders DROP COLUMN ip_address;"),
    tx("drop_products_tax_code", "ALTER TABLE products DROP COLUMN tax_code;"),
    tx("drop_product_tags", "DROP TABLE product_tags;"),
    tx("drop_tags", "DROP TABLE tags;"),
    tx("drop_saved_products_product_fk",
       "ALTER TABLE saved_products DROP CONSTRAINT wishlists_product_id_fkey;"),
    tx("drop_saved_products", "DROP TABLE saved_products CASCADE;"),
    tx("audit_events_unlogged", "ALTER TABLE audit_events SET UNLOGGED;"),
    tx("audit_events_logged", "ALTER TABLE audit_events SET LOGGED;"),
    tx("cluster_order_items", "CLUSTER order_items USING order_items_order_id;"),
    notx("vacuum_full_notifications", "VACUUM FULL notifications;"),
    tx("clear_sessions", "TRUNCATE sessions;"),
    tx("orders_fillfactor", "ALTER TABLE orders SET (fillfactor = 90);"),
    tx("products_title_statistics", "ALTER TABLE products ALTER COLUMN title SET STATISTICS 500;"),
    tx("comment_on_orders", """
COMMENT ON TABLE orders IS 'Customer orders';
COMMENT ON COLUMN orders.total IS 'Gross total, in the order currency';"""),
    tx("reset_coupon_uses", """
LOCK TABLE coupons IN ACCESS EXCLUSIVE MODE;
UPDATE coupons SET uses = 0 WHERE uses IS NULL;"""),
    tx("create_reporting_schema", "CREATE SCHEMA reporting;"),
    tx("move_product_ratings", "ALTER MATERIALIZED VIEW product_ratings SET SCHEMA reporting;"),
    tx("create_reporting_revenue", """
CREATE VIEW reporting.revenue AS
SELECT date_trunc('month', placed_at) AS month, sum(total) AS revenue FROM orders GROUP BY 1;"""),
    tx("move_inventory_movements", "ALTER TABLE inventory_movements SET SCHEMA reporting;"),
    tx("add_inventory_note", "ALTER TABLE reporting.inventory_movements ADD COLUMN note text;"),
]
# fmt: on

# fmt: off
PARTITIONS = [
    tx("create_events", """
CREATE TABLE events (id bigint NOT NULL, kind varchar(30), at timestamptz NOT NULL,
                     payload jsonb) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');"""),
    tx("create_events_2025", "CREATE TABLE events_2025 (LIKE events INCLUDING DEFAULTS);"),
    tx("attach_events_2025", """
ALTER TABLE events ATTACH PARTITION events_2025
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');"""),
    tx("index_events_kind", "CREATE INDEX events_kind ON events (kind);"),
    tx("detach_events_2024", "ALTER TABLE events DETACH PARTITION events_2024;"),
    tx("drop_events_2024", "DROP TABLE events_2024;"),
]
# fmt: on

# fmt: off
BILLING = [
    tx("create_invoices", """
CREATE TABLE invoices (
    id serial PRIMARY KEY,
    account_id integer NOT NULL REFERENCES accounts (id),
    order_id integer REFERENCES orders (id),
    number bigint,
    status varchar(20) DEFAULT 'draft',
    subtotal numeric(12, 2),
    tax numeric(12, 2),
    total numeric(12, 2),
    currency char(3) DEFAULT 'EUR',
    notes text,
    issued_at timestamptz,
    paid_at timestamptz,
    created_at timestamptz DEFAULT now()
);
CREATE INDEX invoices_account_id ON invoices (account_id);
INSERT INTO invoices (account_id, order_id, subtotal, tax, total)
SELECT 1 + g % 200, g, 100, 19, 119 FROM generate_series(1, 500) g;"""),
    tx("create_invoice_lines", """
CREATE TABLE invoice_lines (
    id serial PRIMARY KEY,
    invoice_id integer NOT NULL REFERENCES invoices (id),
    product_id integer REFERENCES products (id),
    description varchar(200),
    quantity integer NOT NULL DEFAULT 1,
    amount numeric(12, 2) NOT NULL
);"""),
    tx("add_orders_invoice_id",
       "ALTER TABLE orders ADD COLUMN invoice_id integer REFERENCES invoices (id);"),
    notx("index_orders_invoice_id",
         "CREATE INDEX CONCURRENTLY orders_invoice_id ON orders (invoice_id);"),
    tx("invoice_number_sequence", """
CREATE SEQUENCE invoice_number_seq;
ALTER TABLE invoices ALTER COLUMN number SET DEFAULT nextval('invoice_number_seq');"""),
    tx("backfill_invoice_numbers",
       "UPDATE invoices SET number = nextval('invoice_number_seq') WHERE number IS NULL;"),
    tx("invoice_number_not_null", "ALTER TABLE invoices ALTER COLUMN number SET NOT NULL;"),
    tx("restart_invoice_numbers", "ALTER SEQUENCE invoice_number_seq RESTART WITH 1000;"),
    tx("invoices_total_check", """
ALTER TABLE invoices ADD CONSTRAINT invoices_total_check CHECK (total >= 0) NOT VALID;
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_total_check;"""),
    tx("add_invoices_pdf", """
ALTER TABLE invoices ADD COLUMN pdf_url text,
                     ADD COLUMN public_id uuid DEFAULT gen_random_uuid();"""),
    tx("grant_orders_read", "GRANT SELECT ON orders TO PUBLIC;"),
    tx(
        "coupon_code_plain_varchar", "ALTER TABLE orders ALTER COLUMN coupon_code TYPE varchar(20);"
    ),
    tx("drop_short_code_domain", "DROP DOMAIN short_code;"),
    tx("order_status_on_hold", "ALTER TYPE order_status ADD VALUE 'on_hold' BEFORE 'paid';"),
    tx("drop_products_brand_id", "ALTER TABLE products DROP COLUMN brand_id;"),
    tx("drop_brands", "DROP TABLE brands;"),
    tx("data_fixes", """
UPDATE users SET locale = 'en' WHERE locale IS NULL;
DELETE FROM notifications WHERE kind = 'obsolete';
INSERT INTO coupons (code, percent_off) VALUES ('WELCOME10', 10);"""),
    tx("rename_coupons_then_alter", """
ALTER TABLE coupons RENAME TO promo_codes;
ALTER TABLE promo_codes ADD COLUMN description text;"""),
    tx("create_webhooks", """
CREATE TABLE webhooks (id serial PRIMARY KEY, account_id integer NOT NULL REFERENCES accounts (id),
                       url text NOT NULL, secret varchar(64), created_at timestamptz DEFAULT now());
CREATE INDEX webhooks_account_id ON webhooks (account_id);
ALTER TABLE webhooks ADD COLUMN active boolean NOT NULL DEFAULT true;"""),
    tx("archive_old_orders", """
CREATE TABLE order_archive AS
SELECT * FROM orders WHERE placed_at < now() - interval '1000 days';"""),
    tx("empty_order_archive", "DELETE FROM order_archive;"),
    tx("drop_order_archive", "DROP TABLE order_archive;"),
    tx("order_items_order_id_bigint", "ALTER TABLE order_items ALTER COLUMN order_id TYPE bigint;"),
    tx("orders_id_bigint", "ALTER TABLE orders ALTER COLUMN id TYPE bigint;"),
    tx("drop_payments_fk", "ALTER TABLE payments DROP CONSTRAINT payments_order_id_fkey;"),
    tx("payments_order_fk_again", """
ALTER TABLE payments ADD CONSTRAINT payments_order_id_fkey
    FOREIGN KEY (order_id) REFERENCES orders (id) NOT VALID;"""),
]
# fmt: on


def _routine() -> list[Change]:
    """The everyday trickle: a nullable column, its backfill and index, per feature table."""
    changes = []
    for table, column, kind, value in [
        ("users", "referral_code", "varchar(20)", "'R' || id"),
        ("accounts", "industry", "varchar(40)", "'retail'"),
        ("products", "search_rank", "integer", "0"),
        ("orders", "channel", "varchar(20)", "'web'"),
        ("payments", "fee", "numeric(10, 2)", "0"),
        ("reviews", "verified_purchase", "boolean", "true"),
        ("shipments", "service_level", "varchar(20)", "'standard'"),
        ("invoices", "reminder_count", "integer", "0"),
        ("addresses", "label", "varchar(40)", "'home'"),
        ("notifications", "channel", "varchar(20)", "'email'"),
    ]:
        changes += [
            tx(f"add_{table}_{column}", f"ALTER TABLE {table} ADD COLUMN {column} {kind};"),
            tx(f"backfill_{table}_{column}",
               f"UPDATE {table} SET {column} = {value} WHERE {column} IS NULL;"),
            tx(f"index_{table}_{column}",
               f"CREATE INDEX {table}_{column} ON {table} ({column});"),
        ]  # fmt: skip
    return changes


# fmt: off
# Issue 28 item 11: what a CASCADE reaches, a column renamed before its type changes, DROP DEFAULT.
CASCADES = [
    tx("create_orders_touch", """
CREATE FUNCTION orders_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NEW;
END
$$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE PROCEDURE orders_touch();"""),
    tx("drop_orders_touch", "DROP FUNCTION orders_touch() CASCADE;"),
    tx("create_product_double_price", """
CREATE FUNCTION double_price(numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
CREATE INDEX products_double_price ON products (double_price(price));"""),
    tx("drop_double_price", "DROP FUNCTION double_price(numeric) CASCADE;"),
    tx("create_order_months", """
CREATE VIEW order_months AS SELECT date_trunc('month', placed_at) AS month, total FROM orders;
CREATE MATERIALIZED VIEW order_month_totals AS
SELECT month, sum(total) AS total FROM order_months GROUP BY month;"""),
    tx("drop_order_months", "DROP VIEW order_months CASCADE;"),
    tx("add_users_avatar", "ALTER TABLE users ADD COLUMN avatar bytea;"),
    tx("avatar_as_text", """
ALTER TABLE users RENAME COLUMN avatar TO avatar_text;
ALTER TABLE users ALTER COLUMN avatar_text TYPE text;"""),
    tx("default_products_search_rank", "ALTER TABLE products ALTER search_rank SET DEFAULT 0;"),
    tx("drop_products_search_rank_default", "ALTER TABLE products ALTER search_rank DROP DEFAULT;"),
]
# fmt: on

LATER: list[Change] = [*OBJECTS, *WIDENING, *PARTITIONS, *BILLING, *_routine(), *CASCADES]
