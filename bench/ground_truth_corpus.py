"""The ground-truth corpus: a shop's migration history, written out as numbered up scripts.

Its first part (here) creates the product's tables (wide, with foreign keys, indexes, unique
keys) and fills them with rows; the second and third (``ground_truth_changes``,
``ground_truth_later``) are the years after: added columns with every kind of default, type
changes that do and do not rewrite, NOT NULL, renames, constraints, indexes (some concurrent,
in no-transaction scripts), views, functions, materialized views, triggers, data fixes, drops.
Every script applies on top of the ones before it; ``write`` lays them out as
``0001_create_users.up.sql``... Seeded rows carry explicit ids: a verified dry run advances
sequences (they are not transactional), so the real run must not rely on their values.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

NO_TX = "-- patcher:no-transaction\n"


class Change(NamedTuple):
    description: str
    sql: str
    transactional: bool = True


def tx(description: str, sql: str) -> Change:
    return Change(description, sql.strip() + "\n")


def notx(description: str, sql: str) -> Change:
    return Change(description, NO_TX + sql.strip() + "\n", transactional=False)


def write(directory: Path) -> list[Path]:
    """Write the whole corpus into ``directory`` (created if missing); return the files."""
    from bench import ground_truth_changes as early
    from bench.ground_truth_later import LATER

    history = [*TABLES, *SEED, *early.LAUNCH, *early.TYPES, *early.DEFAULTS, *early.CONSTRAINTS]
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, change in enumerate([*history, *LATER], start=1):
        path = directory / f"{number:04d}_{change.description}.up.sql"
        path.write_text(change.sql)
        paths.append(path)
    return paths


# fmt: off
TABLES = [
    tx("create_users", """
CREATE TABLE users (
    id serial PRIMARY KEY,
    email varchar(120) NOT NULL UNIQUE,
    name varchar(80),
    password_hash text,
    status varchar(20) DEFAULT 'active',
    locale varchar(10),
    country char(2),
    phone varchar(30),
    is_admin boolean DEFAULT false,
    login_count integer DEFAULT 0,
    bio text,
    avatar bytea,
    created_at timestamp DEFAULT now(),
    updated_at timestamp,
    last_login_at timestamp
);"""),
    tx("create_accounts", """
CREATE TABLE accounts (
    id serial PRIMARY KEY,
    owner_id integer REFERENCES users (id),
    name varchar(100) NOT NULL,
    plan varchar(20) DEFAULT 'free',
    balance numeric(10, 2) DEFAULT 0,
    seats smallint DEFAULT 1,
    settings text,
    external_ref varchar(40),
    billing_email varchar(120),
    trial_ends_at timestamp,
    created_at timestamp DEFAULT now()
);
CREATE INDEX accounts_owner_id ON accounts (owner_id);"""),
    tx("create_categories", """
CREATE TABLE categories (
    id serial PRIMARY KEY,
    parent_id integer REFERENCES categories (id),
    name varchar(60) NOT NULL,
    slug varchar(60) UNIQUE,
    position integer DEFAULT 0,
    created_at timestamp DEFAULT now()
);"""),
    tx("create_products", """
CREATE TABLE products (
    id serial PRIMARY KEY,
    account_id integer NOT NULL REFERENCES accounts (id),
    category_id integer REFERENCES categories (id),
    sku varchar(32) NOT NULL,
    title varchar(140) NOT NULL,
    description text,
    price numeric(10, 2) NOT NULL DEFAULT 0,
    cost numeric(10, 2),
    weight_grams integer,
    stock integer DEFAULT 0,
    barcode varchar(20),
    tax_code varchar(10),
    metadata text,
    is_active boolean DEFAULT true,
    created_at timestamp DEFAULT now(),
    updated_at timestamp
);
CREATE INDEX products_account_id ON products (account_id);
CREATE INDEX products_category_id ON products (category_id);"""),
    tx("create_addresses", """
CREATE TABLE addresses (
    id serial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id),
    line1 varchar(120) NOT NULL,
    line2 varchar(120),
    city varchar(60),
    region varchar(60),
    postal_code varchar(12),
    country char(2),
    created_at timestamp DEFAULT now()
);"""),
    tx("create_orders", """
CREATE TABLE orders (
    id serial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id),
    account_id integer REFERENCES accounts (id),
    shipping_address_id integer REFERENCES addresses (id),
    status varchar(20) NOT NULL DEFAULT 'new',
    total numeric(12, 2) DEFAULT 0,
    currency char(3) DEFAULT 'EUR',
    notes text,
    coupon_code varchar(20),
    ip_address varchar(45),
    placed_at timestamp DEFAULT now(),
    paid_at timestamp,
    shipped_at timestamp
);
CREATE INDEX orders_user_id ON orders (user_id);
CREATE INDEX orders_placed_at ON orders (placed_at);"""),
    tx("create_order_items", """
CREATE TABLE order_items (
    id serial PRIMARY KEY,
    order_id integer NOT NULL REFERENCES orders (id),
    product_id integer NOT NULL REFERENCES products (id),
    quantity integer NOT NULL DEFAULT 1,
    unit_price numeric(10, 2) NOT NULL,
    discount numeric(10, 2) DEFAULT 0,
    created_at timestamp DEFAULT now()
);
CREATE INDEX order_items_order_id ON order_items (order_id);"""),
    tx("create_payments", """
CREATE TABLE payments (
    id serial PRIMARY KEY,
    order_id integer NOT NULL REFERENCES orders (id),
    provider varchar(20) NOT NULL,
    provider_ref varchar(64),
    amount numeric(12, 2) NOT NULL,
    status varchar(20) DEFAULT 'pending',
    raw_response bytea,
    created_at timestamp DEFAULT now(),
    settled_at timestamp
);"""),
    tx("create_reviews", """
CREATE TABLE reviews (
    id serial PRIMARY KEY,
    product_id integer NOT NULL REFERENCES products (id),
    user_id integer REFERENCES users (id),
    rating smallint NOT NULL,
    title varchar(100),
    body text,
    helpful_count integer DEFAULT 0,
    created_at timestamp DEFAULT now()
);"""),
    tx("create_shipments", """
CREATE TABLE shipments (
    id serial PRIMARY KEY,
    order_id integer NOT NULL REFERENCES orders (id),
    carrier varchar(30),
    tracking_number varchar(40),
    cost numeric(8, 2),
    label_pdf bytea,
    shipped_at timestamp,
    delivered_at timestamp
);"""),
    tx("create_coupons", """
CREATE TABLE coupons (
    id serial PRIMARY KEY,
    code varchar(20) NOT NULL UNIQUE,
    percent_off numeric(5, 2),
    amount_off numeric(10, 2),
    max_uses integer,
    uses integer DEFAULT 0,
    valid_from timestamp,
    valid_until timestamp
);"""),
    tx("create_sessions", """
CREATE TABLE sessions (
    id bigserial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id),
    token varchar(64) NOT NULL,
    user_agent text,
    ip varchar(45),
    created_at timestamp DEFAULT now(),
    expires_at timestamp
);"""),
    tx("create_notifications", """
CREATE TABLE notifications (
    id serial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id),
    kind varchar(30) NOT NULL,
    payload text,
    read_at timestamp,
    created_at timestamp DEFAULT now()
);"""),
    tx("create_audit_events", """
CREATE TABLE audit_events (
    id bigserial PRIMARY KEY,
    actor_id integer,
    action varchar(40) NOT NULL,
    subject_type varchar(40),
    subject_id integer,
    data text,
    created_at timestamp DEFAULT now()
);"""),
    tx("create_inventory_movements", """
CREATE TABLE inventory_movements (
    id serial PRIMARY KEY,
    product_id integer NOT NULL REFERENCES products (id),
    delta integer NOT NULL,
    reason varchar(30),
    created_at timestamp DEFAULT now()
);"""),
    tx("create_wishlists_and_tags", """
CREATE TABLE wishlists (
    id serial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id),
    product_id integer NOT NULL REFERENCES products (id),
    created_at timestamp DEFAULT now()
);
CREATE TABLE tags (id serial PRIMARY KEY, name varchar(40) NOT NULL UNIQUE);
CREATE TABLE product_tags (
    product_id integer NOT NULL REFERENCES products (id),
    tag_id integer NOT NULL REFERENCES tags (id),
    PRIMARY KEY (product_id, tag_id)
);"""),
]
# fmt: on

# fmt: off
SEED = [
    tx("seed_users_and_accounts", """
INSERT INTO users (id, email, name, password_hash, locale, country, bio, avatar, created_at)
SELECT g, 'user' || g || '@example.com', 'User ' || g, md5(g::text), 'de', 'DE', 'Hello',
       decode('00ff', 'hex'), now() - g * interval '1 hour'
  FROM generate_series(1, 500) g;
INSERT INTO accounts (id, owner_id, name, settings, external_ref, billing_email)
SELECT g, g, 'Account ' || g, '{"theme": "dark"}', 'acc-' || g, 'billing' || g || '@example.com'
  FROM generate_series(1, 200) g;
INSERT INTO categories (id, name, slug, position)
SELECT g, 'Category ' || g, 'category-' || g, g FROM generate_series(1, 20) g;
SELECT setval('users_id_seq', 500), setval('accounts_id_seq', 200),
       setval('categories_id_seq', 20);"""),
    tx("seed_products", """
INSERT INTO products (id, account_id, category_id, sku, title, price, cost, weight_grams, stock,
                      barcode, metadata)
SELECT g, 1 + g % 200, 1 + g % 20, 'SKU' || g, 'Product ' || g, 10 + g % 90, 5 + g % 40, g,
       g % 50, lpad(g::text, 13, '0'), '{"color": "red"}'
  FROM generate_series(1, 1000) g;
INSERT INTO tags (id, name) SELECT g, 'tag' || g FROM generate_series(1, 30) g;
SELECT setval('products_id_seq', 1000), setval('tags_id_seq', 30);
INSERT INTO product_tags SELECT g, 1 + g % 30 FROM generate_series(1, 500) g;"""),
    tx("seed_orders", """
INSERT INTO addresses (id, user_id, line1, city, postal_code, country)
SELECT g, g, g || ' Main Street', 'Berlin', '10115', 'DE' FROM generate_series(1, 500) g;
INSERT INTO coupons (code, percent_off, max_uses) SELECT 'C' || g, 10, 100
  FROM generate_series(1, 50) g;
INSERT INTO orders (id, user_id, account_id, shipping_address_id, status, total, ip_address,
                    coupon_code, placed_at)
SELECT g, 1 + g % 500, 1 + g % 200, 1 + g % 500, (ARRAY['new', 'paid', 'shipped'])[1 + g % 3],
       g % 300, '10.0.0.' || g % 250, CASE WHEN g % 7 = 0 THEN 'C' || (1 + g % 50) END,
       now() - g * interval '1 minute'
  FROM generate_series(1, 2000) g;
SELECT setval('addresses_id_seq', 500), setval('orders_id_seq', 2000);
INSERT INTO order_items (order_id, product_id, quantity, unit_price)
SELECT 1 + g % 2000, 1 + g % 1000, 1 + g % 3, 10 FROM generate_series(1, 4000) g;"""),
    tx("seed_payments_and_the_rest", """
INSERT INTO payments (order_id, provider, provider_ref, amount, raw_response)
SELECT g, 'stripe', 'ref' || g, g % 300, convert_to('{"ok": true}', 'UTF8')
  FROM generate_series(1, 1500) g;
INSERT INTO reviews (product_id, user_id, rating, title, body)
SELECT 1 + g % 1000, 1 + g % 500, 1 + g % 5, 'Review ' || g, 'Fine'
  FROM generate_series(1, 800) g;
INSERT INTO shipments (order_id, carrier, tracking_number, cost)
SELECT g, 'dhl', 'TRK' || g, 4.99 FROM generate_series(1, 1000) g;
INSERT INTO sessions (user_id, token, user_agent, ip)
SELECT 1 + g % 500, md5('s' || g), 'Mozilla', '10.1.0.1' FROM generate_series(1, 1000) g;
INSERT INTO notifications (user_id, kind, payload)
SELECT 1 + g % 500, 'welcome', 'Welcome!' FROM generate_series(1, 1000) g;
INSERT INTO audit_events (actor_id, action, subject_type, subject_id, data)
SELECT 1 + g % 500, 'login', 'user', 1 + g % 500, '{}' FROM generate_series(1, 3000) g;
INSERT INTO inventory_movements (product_id, delta, reason)
SELECT 1 + g % 1000, g % 7 - 3, 'restock' FROM generate_series(1, 1000) g;
INSERT INTO wishlists (user_id, product_id) SELECT 1 + g % 500, 1 + g % 1000
  FROM generate_series(1, 300) g;
ANALYZE;"""),
]
# fmt: on
