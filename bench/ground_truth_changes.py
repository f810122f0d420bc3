"""The ground-truth corpus, part two: the shop's schema changes after launch, in order.

Each entry is one migration (see ``ground_truth_corpus``). Whether it rewrites or locks a
table is not written down here: PostgreSQL says so when the harness runs it.
"""

from __future__ import annotations

from bench.ground_truth_corpus import notx, tx

UTC = "SET timezone = 'UTC';\n"

# fmt: off
LAUNCH = [
    tx("add_users_middle_name", "ALTER TABLE users ADD COLUMN middle_name varchar(40);"),
    tx("create_brands", """
CREATE TABLE brands (id serial PRIMARY KEY, name varchar(80) NOT NULL,
                     created_at timestamptz DEFAULT now());
ALTER TABLE products ADD COLUMN brand_id integer REFERENCES brands (id);"""),
    notx("index_products_brand_id",
         "CREATE INDEX CONCURRENTLY products_brand_id ON products (brand_id);"),
    tx("add_orders_tracking_token",
       "ALTER TABLE orders ADD COLUMN tracking_token uuid DEFAULT gen_random_uuid();"),
    tx("add_users_marketing_opt_in",
       "ALTER TABLE users ADD COLUMN marketing_opt_in boolean NOT NULL DEFAULT false;"),
    tx("users_name_longer", "ALTER TABLE users ALTER COLUMN name TYPE varchar(120);"),
    tx("index_users_created_at", "CREATE INDEX users_created_at ON users (created_at);"),
    tx("backfill_products_updated_at",
       "UPDATE products SET updated_at = created_at WHERE updated_at IS NULL;"),
    tx(
        "products_updated_at_not_null", "ALTER TABLE products ALTER COLUMN updated_at SET NOT NULL;"
    ),
    tx("products_updated_at_default",
       "ALTER TABLE products ALTER COLUMN updated_at SET DEFAULT now();"),
    tx("add_accounts_region", "ALTER TABLE accounts ADD COLUMN region varchar(10) DEFAULT 'eu';"),
    tx("create_order_totals_view", """
CREATE VIEW order_totals AS
SELECT o.id, o.user_id, sum(i.quantity * i.unit_price) AS total
  FROM orders o JOIN order_items i ON i.order_id = o.id
 GROUP BY o.id, o.user_id;"""),
    tx("reviews_rating_check",
       "ALTER TABLE reviews ADD CONSTRAINT reviews_rating_range CHECK (rating BETWEEN 1 AND 5);"),
    tx("audit_events_actor_fk", """
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_fk
    FOREIGN KEY (actor_id) REFERENCES users (id);"""),
    tx("index_orders_status", "CREATE INDEX orders_status ON orders (status);"),
    tx("add_sessions_revoked_at", "ALTER TABLE sessions ADD COLUMN revoked_at timestamp;"),
    tx("audit_subject_id_bigint", "ALTER TABLE audit_events ALTER COLUMN subject_id TYPE bigint;"),
    tx("products_price_precision", "ALTER TABLE products ALTER COLUMN price TYPE numeric(12, 2);"),
    tx("products_cost_scale", "ALTER TABLE products ALTER COLUMN cost TYPE numeric(12, 4);"),
    tx("create_set_updated_at", """
CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;"""),
    tx("products_updated_at_trigger", """
CREATE TRIGGER products_set_updated_at BEFORE UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();"""),
    tx("users_updated_at_trigger", """
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();"""),
    tx("add_orders_source",
       "ALTER TABLE orders ADD COLUMN source varchar(20) NOT NULL DEFAULT 'web';"),
    tx("add_products_slug", "ALTER TABLE products ADD COLUMN slug varchar(160);"),
    tx("backfill_products_slug",
       "UPDATE products SET slug = lower(replace(title, ' ', '-')) WHERE slug IS NULL;"),
    notx("products_slug_unique_index",
         "CREATE UNIQUE INDEX CONCURRENTLY products_slug_key ON products (slug);"),
    tx("products_slug_unique_constraint",
       "ALTER TABLE products ADD CONSTRAINT products_slug_unique\n"
       "    UNIQUE USING INDEX products_slug_key;"),
    tx("rename_users_phone", "ALTER TABLE users RENAME COLUMN phone TO phone_number;"),
    tx("payments_provider_ref_longer",
       "ALTER TABLE payments ALTER COLUMN provider_ref TYPE varchar(128);"),
    tx("add_coupons_account",
       "ALTER TABLE coupons ADD COLUMN account_id integer REFERENCES accounts (id);"),
    tx("create_daily_sales", """
CREATE MATERIALIZED VIEW daily_sales AS
SELECT date_trunc('day', placed_at) AS day, count(*) AS orders, sum(total) AS revenue
  FROM orders GROUP BY 1;"""),
    tx("daily_sales_unique_day", "CREATE UNIQUE INDEX daily_sales_day ON daily_sales (day);"),
    tx("refresh_daily_sales", "REFRESH MATERIALIZED VIEW daily_sales;"),
    tx("refresh_daily_sales_concurrently", "REFRESH MATERIALIZED VIEW CONCURRENTLY daily_sales;"),
]
# fmt: on

# fmt: off
TYPES = [
    tx(
        "users_timestamps_with_time_zone",
        UTC
        + """
ALTER TABLE users ALTER COLUMN created_at TYPE timestamptz,
                  ALTER COLUMN updated_at TYPE timestamptz,
                  ALTER COLUMN last_login_at TYPE timestamptz;"""),
    tx("orders_paid_at_with_time_zone",
       "ALTER TABLE orders ALTER COLUMN paid_at TYPE timestamptz\n"
       "    USING paid_at AT TIME ZONE 'UTC';"),
    tx("orders_shipped_at_new_york", """
SET LOCAL timezone = 'America/New_York';
ALTER TABLE orders ALTER COLUMN shipped_at TYPE timestamptz;"""),
    tx(
        "payments_created_at_cast",
        UTC
        + """
ALTER TABLE payments ALTER COLUMN created_at TYPE timestamptz USING created_at::timestamptz;"""),
    tx("payments_settled_at_server_zone",
       "ALTER TABLE payments ALTER COLUMN settled_at TYPE timestamptz;"),
    tx("payments_raw_response_text", """
ALTER TABLE payments ALTER COLUMN raw_response TYPE text
    USING convert_from(raw_response, 'UTF8');"""),
    tx("accounts_settings_jsonb",
       "ALTER TABLE accounts ALTER COLUMN settings TYPE jsonb USING settings::jsonb;"),
    tx("products_metadata_jsonb",
       "ALTER TABLE products ALTER COLUMN metadata TYPE jsonb USING metadata::jsonb;"),
    tx("notifications_payload_bounded",
       "ALTER TABLE notifications ALTER COLUMN payload TYPE varchar(2000);"),
    tx("users_password_hash_bounded",
       "ALTER TABLE users ALTER COLUMN password_hash TYPE varchar(255);"),
    tx("accounts_external_ref_shorter",
       "ALTER TABLE accounts ALTER COLUMN external_ref TYPE varchar(32);"),
    tx("products_barcode_text", "ALTER TABLE products ALTER COLUMN barcode TYPE text;"),
    tx("users_locale_unbounded", "ALTER TABLE users ALTER COLUMN locale TYPE varchar;"),
    tx("products_sku_longer_using",
       "ALTER TABLE products ALTER COLUMN sku TYPE varchar(64) USING sku::varchar(64);"),
    tx("reviews_rating_integer", "ALTER TABLE reviews ALTER COLUMN rating TYPE integer;"),
    tx("addresses_country_varchar", "ALTER TABLE addresses ALTER COLUMN country TYPE varchar(2);"),
    tx("create_email_domain",
       "CREATE DOMAIN email_address AS varchar(120) CHECK (VALUE LIKE '%@%');"),
    tx("accounts_billing_email_domain",
       "ALTER TABLE accounts ALTER COLUMN billing_email TYPE email_address;"),
    tx("create_short_code_domain", "CREATE DOMAIN short_code AS varchar(20);"),
    tx("orders_coupon_code_domain", "ALTER TABLE orders ALTER COLUMN coupon_code TYPE short_code;"),
    tx("create_order_status_enum",
       "CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled');"),
    tx("orders_status_enum", """
ALTER TABLE orders ALTER COLUMN status DROP DEFAULT,
                   ALTER COLUMN status TYPE order_status USING status::order_status,
                   ALTER COLUMN status SET DEFAULT 'new';"""),
    tx("order_status_refunded", "ALTER TYPE order_status ADD VALUE 'refunded';"),
    tx("inventory_delta_bigint", "ALTER TABLE inventory_movements ALTER COLUMN delta TYPE bigint;"),
    tx("products_stock_bigint", "ALTER TABLE products ALTER COLUMN stock TYPE bigint;"),
    tx("accounts_balance_unbounded", "ALTER TABLE accounts ALTER COLUMN balance TYPE numeric;"),
    tx("shipments_cost_wider", "ALTER TABLE shipments ALTER COLUMN cost TYPE numeric(10, 2);"),
    tx(
        "users_name_collation", 'ALTER TABLE users ALTER COLUMN name TYPE varchar(120) COLLATE "C";'
    ),
    tx("inventory_reason_longer",
       "ALTER TABLE inventory_movements ALTER COLUMN reason TYPE varchar(50);"),
    tx("drop_shipments_label_pdf", "ALTER TABLE shipments DROP COLUMN label_pdf;"),
    tx("drop_users_avatar", "ALTER TABLE users DROP COLUMN avatar;"),
]
# fmt: on

# fmt: off
DEFAULTS = [
    tx("create_new_public_ref", """
CREATE FUNCTION new_public_ref() RETURNS text LANGUAGE sql VOLATILE
    AS $$ SELECT md5(random()::text) $$;"""),
    tx("add_accounts_public_ref",
       "ALTER TABLE accounts ADD COLUMN public_ref text DEFAULT new_public_ref();"),
    tx("create_default_region", """
CREATE FUNCTION default_region() RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT 'eu-central' $$;"""),
    tx("add_addresses_region_code",
       "ALTER TABLE addresses ADD COLUMN region_code text DEFAULT default_region();"),
    tx("create_current_tenant", """
CREATE FUNCTION current_tenant() RETURNS integer LANGUAGE sql STABLE AS $$ SELECT 1 $$;"""),
    tx("add_products_tenant",
       "ALTER TABLE products ADD COLUMN tenant_id integer DEFAULT current_tenant();"),
    tx("add_sessions_seen_at",
       "ALTER TABLE sessions ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();"),
    tx("add_notifications_sent_at",
       "ALTER TABLE notifications ADD COLUMN sent_at timestamptz DEFAULT now();"),
    tx("add_coupons_created_at", """
ALTER TABLE coupons ADD COLUMN created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP;"""),
    tx("add_reviews_sort_key",
       "ALTER TABLE reviews ADD COLUMN sort_key double precision DEFAULT random();"),
    tx("add_shipments_public_no",
       "ALTER TABLE shipments ADD COLUMN public_no bigint GENERATED ALWAYS AS IDENTITY;"),
    tx("add_wishlists_position", "ALTER TABLE wishlists ADD COLUMN position bigserial;"),
    tx("add_order_items_line_total", """
ALTER TABLE order_items ADD COLUMN line_total numeric(12, 2)
    GENERATED ALWAYS AS (quantity * unit_price) STORED;"""),
    tx("add_payments_idempotency_key", "ALTER TABLE payments ADD COLUMN idempotency_key uuid;"),
    tx("add_users_theme", "ALTER TABLE users ADD COLUMN theme varchar(10) DEFAULT lower('LIGHT');"),
    tx("add_products_labels", "ALTER TABLE products ADD COLUMN labels text[] DEFAULT '{}';"),
    tx("add_accounts_features",
       "ALTER TABLE accounts ADD COLUMN features jsonb NOT NULL DEFAULT '{}'::jsonb;"),
    tx("add_orders_expires_at",
       "ALTER TABLE orders ADD COLUMN expires_at timestamptz DEFAULT now() + interval '14 days';"),
    tx("add_reviews_two_columns", """
ALTER TABLE reviews ADD COLUMN locale varchar(10) DEFAULT 'en',
                    ADD COLUMN moderation_id uuid DEFAULT gen_random_uuid();"""),
]
# fmt: on

# fmt: off
CONSTRAINTS = [
    tx("backfill_orders_account", "UPDATE orders SET account_id = 1 WHERE account_id IS NULL;"),
    tx("orders_account_not_null", "ALTER TABLE orders ALTER COLUMN account_id SET NOT NULL;"),
    tx("payments_provider_ref_check", """
ALTER TABLE payments ADD CONSTRAINT payments_provider_ref_not_null
    CHECK (provider_ref IS NOT NULL) NOT VALID;"""),
    tx("validate_payments_provider_ref",
       "ALTER TABLE payments VALIDATE CONSTRAINT payments_provider_ref_not_null;"),
    tx("payments_provider_ref_not_null",
       "ALTER TABLE payments ALTER COLUMN provider_ref SET NOT NULL;"),
    tx("drop_payments_provider_ref_check",
       "ALTER TABLE payments DROP CONSTRAINT payments_provider_ref_not_null;"),
    tx("accounts_name_nullable", "ALTER TABLE accounts ALTER COLUMN name DROP NOT NULL;"),
    tx("add_reviews_order_id", "ALTER TABLE reviews ADD COLUMN order_id integer;"),
    tx("backfill_reviews_order_id",
       "UPDATE reviews SET order_id = 1 + id % 2000 WHERE order_id IS NULL;"),
    tx("reviews_order_fk_not_valid", """
ALTER TABLE reviews ADD CONSTRAINT reviews_order_fk
    FOREIGN KEY (order_id) REFERENCES orders (id) NOT VALID;"""),
    tx("validate_reviews_order_fk", "ALTER TABLE reviews VALIDATE CONSTRAINT reviews_order_fk;"),
    tx("orders_coupon_fk", """
ALTER TABLE orders ADD CONSTRAINT orders_coupon_fk
    FOREIGN KEY (coupon_code) REFERENCES coupons (code);"""),
    notx("index_reviews_order_id",
         "CREATE INDEX CONCURRENTLY reviews_order_id ON reviews (order_id);"),
    tx("notifications_kind_check",
       "ALTER TABLE notifications ADD CONSTRAINT notifications_kind_nonempty CHECK (kind <> '');"),
    tx("payments_provider_ref_unique",
       "ALTER TABLE payments ADD CONSTRAINT payments_provider_ref_key UNIQUE (provider_ref);"),
    tx("shipments_tracking_check_not_valid", """
ALTER TABLE shipments ADD CONSTRAINT shipments_tracking_nonempty
    CHECK (tracking_number <> '') NOT VALID;"""),
    tx("validate_shipments_tracking",
       "ALTER TABLE shipments VALIDATE CONSTRAINT shipments_tracking_nonempty;"),
    tx(
        "users_email_lower_unique", "CREATE UNIQUE INDEX users_email_lower ON users (lower(email));"
    ),
]
# fmt: on
